"""A database written by a newer localr1 (a migration this version does not know) is refused, and left as it was."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest

from localr1.errors import StoreError
from localr1.paths import data_dir
from localr1.store import ConversationStore
from tests.cli_helpers import localr1

FUTURE = "0042_from_the_future"


def _newer_database(path: Path) -> None:
    """A real database of this version, then what a newer one would add: a table and its migration's record."""
    store = ConversationStore(path)
    cid = store.create_conversation("Keep me")
    store.add_message(cid, "user", "precious words")
    store.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE future_things (x INTEGER)")
        conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (FUTURE, time.time()))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of the folder: its content's hash and its modification time."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir()) if p.stat().st_size or not p.name.endswith(("-wal", "-shm"))}


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_newer_database_is_refused_and_left_as_it_was(tmp_path: Path, journal: str) -> None:
    path = tmp_path / "c.db"
    _newer_database(path)
    if journal == "delete":  # a newer version might use another journal mode: switching back would write the file
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
    before = _snapshot(tmp_path)
    with pytest.raises(StoreError) as caught:
        ConversationStore(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert f"written by a newer localr1 (migration {FUTURE})" in message
    assert "upgrade localr1" in message and "--db" in message
    assert _snapshot(tmp_path) == before  # nothing written, nothing moved aside
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == journal


def test_chat_on_a_newer_database_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _newer_database(path)
    before = _snapshot(tmp_path)
    result = localr1("chat", "--db", str(path), timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("localr1: error: the conversation database ")
    assert f"newer localr1 (migration {FUTURE})" in lines[0]
    assert "Traceback" not in result.stderr
    assert _snapshot(tmp_path) == before
    assert not (data_dir() / "conversations.db").exists()  # --db was the database opened, not the default one

