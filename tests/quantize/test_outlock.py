"""The run lock on output folders and files, with real processes holding real OS locks (no llama.cpp)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localr1.errors import FileSystemError, OutputInUseError
from quantize.ladder.manifest import partial_path
from quantize.outlock import DIR_LOCK_NAME, INFO_SUFFIX, is_lock_artifact, locked_dir, locked_file, read_holder

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from quantize.outlock import locked_dir, locked_file\n"
    "target = Path(sys.argv[2])\n"
    "lock = locked_dir(target, create=True) if sys.argv[1] == 'dir' else locked_file(target)\n"
    "with lock:\n"
    "    print('held', flush=True)\n"
    "    time.sleep(float(sys.argv[3]))\n"
)


def _holder(kind: str, target: Path, seconds: float = 60) -> subprocess.Popen[str]:
    """Another process that takes the lock and keeps it; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, kind, str(target), str(seconds)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_folder_is_refused_at_once_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "ladder"
    proc = _holder("dir", out)
    try:
        started = time.monotonic()
        with pytest.raises(OutputInUseError) as exc, locked_dir(out, create=True):
            pass
        assert time.monotonic() - started < 0.5  # no waiting: the holder's record is there
        message = exc.value.message
        assert message.startswith(f"{out} is in use by another localr1 run (pid {proc.pid} on {socket.gethostname()}")
        assert "started 20" in message and "-c" in message  # start time and command line
        assert message.endswith("wait for it to finish, or choose another output directory")
        assert "\n" not in message
    finally:
        proc.kill()
        proc.wait()
    with locked_dir(out, create=True):  # the kernel released the killed holder's lock
        pass


def test_a_held_file_is_refused_and_released_when_its_holder_ends(tmp_path: Path) -> None:
    out = tmp_path / "model.gguf"
    proc = _holder("file", out, seconds=1)
    with pytest.raises(OutputInUseError, match=f"pid {proc.pid}.*choose another output file"), locked_file(out):
        pass
    proc.wait(timeout=30)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # lock and record removed on release
    with locked_file(out):
        assert (tmp_path / f".{out.name}.lock").exists()
        assert read_holder(tmp_path / f".{out.name}.lock{INFO_SUFFIX}") is not None


def test_a_sigkilled_holder_leaves_files_that_do_not_block(tmp_path: Path) -> None:
    out = tmp_path / "ladder"
    proc = _holder("dir", out)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lock, info = out / DIR_LOCK_NAME, out / (DIR_LOCK_NAME + INFO_SUFFIX)
    assert lock.exists() and info.exists()  # what the killed run left behind
    dead = read_holder(info)
    assert dead is not None and dead.pid == proc.pid and not dead.alive()
    started = time.monotonic()
    with locked_dir(out, create=True):
        holder = read_holder(info)
        assert holder is not None and holder.pid == os.getpid()
    assert time.monotonic() - started < 0.5
    assert not lock.exists() and not info.exists()


def test_a_record_without_a_live_lock_does_not_block(tmp_path: Path) -> None:
    """A record naming a dead pid (or garbage) left beside a lock nobody holds is taken over."""
    out = tmp_path / "ladder"
    out.mkdir()
    (out / DIR_LOCK_NAME).write_text("")
    (out / (DIR_LOCK_NAME + INFO_SUFFIX)).write_text(json.dumps(
        {"pid": 2**22 + 7, "host": socket.gethostname(), "started": "2020-01-01 00:00:00", "command": "x"}))
    with locked_dir(out, create=True):
        holder = read_holder(out / (DIR_LOCK_NAME + INFO_SUFFIX))
        assert holder is not None and holder.pid == os.getpid()


def test_reentrant_in_one_process_and_folders_it_made_are_removed_when_empty(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    with locked_dir(out, create=True):
        with locked_dir(out, create=True):  # quantize holds it around build_ladder, which takes it again
            pass
        link = tmp_path / "link"
        link.symlink_to(out)
        with locked_dir(link, create=True):  # the same folder by another path: the same lock
            pass
        link.unlink()
        assert (out / DIR_LOCK_NAME).exists()  # still held by the outer block
        assert is_lock_artifact(DIR_LOCK_NAME) and is_lock_artifact(DIR_LOCK_NAME + INFO_SUFFIX)
    assert not (tmp_path / "a").exists()  # a refused or failed run leaves no empty folders behind
    with locked_dir(out, create=True):
        (out / "kept.txt").write_text("x")
    assert sorted(p.name for p in out.iterdir()) == ["kept.txt"]


def test_folder_errors_are_one_line_user_errors(tmp_path: Path) -> None:
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(FileSystemError, match="is a file, not a folder"), locked_dir(afile, create=True):
        pass
    with pytest.raises(FileSystemError, match=r"cannot create the output folder .*Not a directory \(ENOTDIR\)"), \
            locked_dir(afile / "sub", create=True):
        pass
    with pytest.raises(FileSystemError, match=r"cannot create the output folder /proc/nope: .*\(ENOENT\)"), \
            locked_dir(Path("/proc/nope"), create=True):
        pass
    assert afile.read_text() == "x"


def test_temporary_names_are_unique_to_the_process(tmp_path: Path) -> None:
    final = tmp_path / "manifest.json"
    code = "import sys; from pathlib import Path; from quantize.ladder.manifest import partial_path; " \
           "print(partial_path(Path(sys.argv[1])))"
    other = subprocess.run([sys.executable, "-c", code, str(final)], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.strip()
    mine = partial_path(final)
    assert mine != Path(other) and str(os.getpid()) in mine.name and mine.parent == final.parent
