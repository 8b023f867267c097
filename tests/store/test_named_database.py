"""A database the user named (`chat --db PATH`) is never created in a missing folder nor moved aside when it is not a
database: one line, a non-zero exit, every file left as it was. The default database keeps its recovery."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from localr1.errors import StoreError
from localr1.paths import data_dir
from localr1.store import ConversationStore
from localr1.store.conversations import default_db_path
from tests.cli_helpers import localr1


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under the folder and its content's hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_error(args: list[str]) -> str:
    result = localr1("chat", *args, timeout=60)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("localr1: error: "), result.stderr
    return lines[0]


def _malformed(path: Path) -> None:
    """A real database in rollback-journal mode whose b-tree pages are wrecked (its header still valid)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x TEXT)")
    with conn:
        conn.executemany("INSERT INTO t VALUES (?)", [(f"row {i} " * 40,) for i in range(400)])
    conn.close()
    data = bytearray(path.read_bytes())
    data[4096 * 2: 4096 * 5] = b"\xa5" * (4096 * 3)
    path.write_bytes(bytes(data))


def test_chat_db_in_a_missing_folder_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "x.db"
    line = _one_line_error(["--db", str(target)])
    assert f"the folder {target.parent} for the conversation database x.db does not exist" in line
    assert "create it first, or leave out --db" in line
    assert not (tmp_path / "no").exists()
    assert not default_db_path().exists()


def test_chat_db_that_is_not_a_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"my notes, not a database\n" * 400)
    before = _snapshot(tmp_path)
    line = _one_line_error(["--db", str(junk)])
    assert f"{junk} is not a SQLite database, or is damaged" in line
    assert "it was left as it was: name another file with --db, or leave out --db for the default" in line
    assert _snapshot(tmp_path) == before  # not moved aside, no -wal/-shm beside it
    assert not default_db_path().exists()


def test_chat_db_that_is_another_programs_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    with conn:
        conn.execute("CREATE TABLE invoices (id INTEGER, total REAL)")
    conn.close()
    before = _snapshot(tmp_path)
    line = _one_line_error(["--db", str(other)])
    assert f"{other} is another program's SQLite database (tables invoices)" in line and "left as it was" in line
    assert _snapshot(tmp_path) == before  # no localr1 tables, not switched to WAL, nothing beside it


def test_a_named_damaged_database_is_refused_and_not_written(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _malformed(path)
    before = _snapshot(tmp_path)
    with pytest.raises(StoreError, match="is not a SQLite database, or is damaged"):
        ConversationStore(path, named=True)
    assert _snapshot(tmp_path) == before  # its header was not switched to WAL either


def test_the_default_database_folder_is_still_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALR1_HOME", str(tmp_path / "new" / "home"))
    store = ConversationStore()
    store.create_conversation("first")
    store.close()
    assert default_db_path().parent == data_dir() and default_db_path().is_file()


def test_a_damaged_default_database_is_still_moved_aside(tmp_path: Path) -> None:
    """The default file is the user's history: kept whole under a new name, and the app starts on a fresh one."""
    path = default_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    _malformed(path)
    damaged = path.read_bytes()
    store = ConversationStore()
    assert store.recovered_from is not None and store.recovered_from.read_bytes() == damaged
    assert store.conversations() == []


@pytest.mark.parametrize("given", ["", "   "])
def test_chat_db_empty_is_a_usage_error_that_names_no_folder(given: str, tmp_path: Path) -> None:
    """`--db ''` became Path('.'), reported as 'the conversation database . failed'; '  ' created a file named ' '."""
    result = localr1("chat", "--db", given, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--db" in lines[0] and "empty" in lines[0] and "database ." not in lines[0]
    assert not default_db_path().exists()
