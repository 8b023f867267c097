"""A conversation database that cannot be opened (a read-only or full disk, a folder or a pipe in its place, a name
too long): `chat` says why and what to do in one line, touching nothing.

Root ignores permission bits, so the disk is a real tmpfs remounted read-only in a private mount namespace
(`unshare -m`), skipped where mounting is not allowed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from localr1.paths import data_dir
from tests.cli_helpers import localr1
from tests.quantize.test_cli_file_errors import PRIVATE_MOUNT, private_mounts  # noqa: F401

MAKE_DB = ('"$PY" -c "import sys; from pathlib import Path; from localr1.store import ConversationStore; '
           's = ConversationStore(Path(sys.argv[1])); s.add_message(s.create_conversation(\'t\'), \'user\', \'kept\'); '
           's.close()" "$MNT/data/conversations.db"')


def _chat_on_tmpfs(tmp_path: Path, setup: str, args: list[str], *, read_only: bool = True,
                   free_pages: int = -1) -> tuple[list[str], list[str]]:
    mnt, listing = tmp_path / "mnt", tmp_path / "listing.txt"
    mnt.mkdir()
    env = {**os.environ, "LISTING": str(listing), "MNT": str(mnt), "PY": sys.executable,
           "SETUP": f'mkdir -p "$MNT/data" && {setup}' + (' && mount -o remount,ro "$MNT"' if read_only else ""),
           "LOCALR1_HOME": str(mnt), "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(["unshare", "-m", "sh", "-c", PRIVATE_MOUNT, "sh", str(mnt), "size=4m", str(free_pages),
                             sys.executable, "-m", "localr1", "chat", *[a.replace("MNT", str(mnt)) for a in args]],
                            capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    return result.stderr.strip().splitlines(), listing.read_text().split()


@pytest.mark.usefixtures("private_mounts")
def test_existing_database_in_a_read_only_folder(tmp_path: Path) -> None:
    lines, listing = _chat_on_tmpfs(tmp_path, MAKE_DB, [])
    assert len(lines) == 1 and lines[0].startswith("localr1: error: the conversation database "), lines
    assert f"the folder {tmp_path / 'mnt' / 'data'} cannot be written" in lines[0]
    assert "make it writable, or use --db PATH" in lines[0]
    assert listing == ["./data", "./data/conversations.db"]


@pytest.mark.usefixtures("private_mounts")
def test_new_named_database_in_a_read_only_folder(tmp_path: Path) -> None:
    lines, listing = _chat_on_tmpfs(tmp_path, "true", ["--db", "MNT/data/mine.db"])
    assert len(lines) == 1 and f"the folder {tmp_path / 'mnt' / 'data'} cannot be written" in lines[0], lines
    assert listing == ["./data"]


@pytest.mark.usefixtures("private_mounts")
def test_new_database_on_a_full_disk(tmp_path: Path) -> None:
    lines, listing = _chat_on_tmpfs(tmp_path, "true", [], read_only=False, free_pages=0)
    assert len(lines) == 1 and "(SQLITE_FULL)" in lines[0], lines
    assert f"the disk holding {tmp_path / 'mnt' / 'data'} is full: free some disk space" in lines[0]
    assert listing == ["./data", "./data/conversations.db", "./filler"]  # an empty file SQLite opens as a new database


def _one_line(args: list[str]) -> str:
    result = localr1("chat", *args, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("localr1: error: "), result.stderr
    return lines[0]


def test_a_folder_a_pipe_or_a_long_name_given_as_database(tmp_path: Path) -> None:
    """SQLite said 'unable to open database file' or 'disk I/O error'; the line now says what is wrong."""
    line = _one_line(["--db", str(tmp_path)])
    assert f"{tmp_path} is a folder, not a database file" in line and "--db PATH" in line
    assert str(tmp_path / "conversations.db") in line  # a file name to give instead
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    line = _one_line(["--db", str(fifo)])
    assert f"{fifo} is not a regular file" in line and "--db PATH" in line
    line = _one_line(["--db", str(tmp_path / ("n" * 300 + ".db"))])
    assert "File name too long (ENAMETOOLONG); use a shorter path" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.db"]


def test_a_file_or_a_folder_in_the_way_of_the_default_database() -> None:
    data = data_dir()
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("mine")
    line = _one_line([])
    assert f"cannot create the folder {data} for conversations: {data} is a file, not a folder" in line
    assert "move it away, or use --db PATH" in line
    assert data.read_text() == "mine"
    data.unlink()
    (data / "conversations.db").mkdir(parents=True)
    line = _one_line([])
    assert f"{data / 'conversations.db'} is a folder, not a database file" in line
    assert sorted(p.name for p in data.iterdir()) == ["conversations.db"]
