"""A conversation database on a read-only or full disk: `chat` says why it cannot open it and what to do.

Root ignores permission bits, so the disk is a real tmpfs remounted read-only in a private mount namespace
(`unshare -m`), skipped where mounting is not allowed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
