"""The command line shows names from files as written, and a locked conversation database stops `chat` cleanly."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from localr1.paths import data_dir
from localr1.store import ConversationStore
from tests.cli_helpers import localr1
from tests.gguf_edit import STRING, rewrite_gguf


def test_info_shows_a_name_with_brackets_as_written(demo_path: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # the whole path on one line
    name = "Evil [/bold] Qwen [experimental] 7B"  # crashed rich; and '[experimental]' vanished
    model = rewrite_gguf(demo_path, tmp_path / "[red]odd[i].gguf", general__name=(STRING, name))
    result = localr1("info", str(model))
    assert result.returncode == 0, result.stderr
    assert name in result.stdout and "[red]odd[i].gguf" in result.stdout
    assert json.loads(localr1("info", "--json", str(model)).stdout)["name"] == name


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m"  # retitle the terminal, clear the screen, a one-byte CSI


def test_info_never_sends_escape_sequences_from_a_file(demo_path: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    model = rewrite_gguf(demo_path, tmp_path / "esc.gguf", general__name=(STRING, f"Evil{ESCAPES}" + "N" * 100_000))
    result = localr1("info", str(model))
    assert result.returncode == 0, result.stderr
    assert not any(c in result.stdout for c in "\x1b\x07\x9b")
    assert "Evil\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m" in result.stdout  # shown, as escapes
    assert len(result.stdout) < 5000  # a 100,000-character name is cut, and says so
    assert "more characters)" in result.stdout


def test_error_lines_never_send_escape_sequences(demo_path: Path, tmp_path: Path) -> None:
    model = rewrite_gguf(demo_path, tmp_path / "arch.gguf", general__architecture=(STRING, f"evil{ESCAPES}"))
    result = localr1("info", str(model))
    assert result.returncode == 1 and "unknown model architecture 'evil\\x1b]0;pwned" in result.stderr
    assert not any(c in result.stderr for c in "\x1b\x07\x9b")


def test_chat_on_a_locked_database_is_one_line_and_moves_nothing() -> None:
    path = data_dir() / "conversations.db"
    store = ConversationStore(path)
    cid = store.create_conversation("Keep me")
    store.add_message(cid, "user", "precious words")
    store.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = localr1("chat", timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("localr1: error: the conversation database ")
    assert "locked by another program" in lines[0]
    assert sorted(p.name for p in path.parent.iterdir() if "corrupt" in p.name) == []
    assert [m.content for m in ConversationStore(path).messages(cid)] == ["precious words"]


def test_models_never_sends_escape_sequences_from_files_on_disk(demo_path: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A GGUF found in a model folder (another tool's download): its path is shown with escapes, not sent."""
    monkeypatch.setenv("COLUMNS", "400")
    folder = tmp_path / "found"
    folder.mkdir()
    (folder / f"file{ESCAPES}.gguf").symlink_to(demo_path)
    config = data_dir().parent / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(f"model_folders = [{json.dumps(str(folder))}]\n")
    result = localr1("models")
    assert result.returncode == 0, result.stderr
    assert "file\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m.gguf" in result.stdout
    assert not any(c in result.stdout + result.stderr for c in "\x1b\x07\x9b")


@pytest.mark.model
def test_run_plan_line_never_sends_escape_sequences_from_a_file_name(demo_path: Path, tmp_path: Path) -> None:
    model = tmp_path / f"demo{ESCAPES}.gguf"
    model.symlink_to(demo_path)
    result = localr1("run", "-m", str(model), "--max-tokens", "1", "--temperature", "0", "hi")
    assert result.returncode == 0, result.stderr
    assert "localr1: plan: " in result.stderr and "demo\\x1b]0;pwned" in result.stderr
    assert not any(c in result.stderr for c in "\x1b\x07\x9b")
