"""A database the user named (`chat --db PATH`) is never created in a missing folder: one line, a non-zero exit,
nothing created. The default database's folder still is."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

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


def test_chat_db_in_a_missing_folder_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "x.db"
    line = _one_line_error(["--db", str(target)])
    assert f"the folder {target.parent} for the conversation database x.db does not exist" in line
    assert "create it first, or leave out --db" in line
    assert not (tmp_path / "no").exists()
    assert not default_db_path().exists()


def test_the_default_database_folder_is_still_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALR1_HOME", str(tmp_path / "new" / "home"))
    store = ConversationStore()
    store.create_conversation("first")
    store.close()
    assert default_db_path().parent == data_dir() and default_db_path().is_file()
