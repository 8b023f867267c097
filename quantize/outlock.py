"""Run locks on output folders and files, so that two localr1 runs never write the same outputs.

The lock is an OS-level lock (flock, through the `filelock` package) on a hidden file: the kernel releases it
when its process dies, so a run killed with SIGKILL never blocks the next one. Beside it, the holder records
who it is (pid, host, start time, command) for the message the next run shows. Both files are removed when
the run ends; a killed run's leftovers are taken over by the next run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from localr1.errors import FileSystemError, OutputInUseError
from localr1.oserrors import file_system_error

DIR_LOCK_NAME = ".localr1.lock"
INFO_SUFFIX = ".info"
_ARTIFACT = re.compile(r"^\..+\.lock(\.info(\.\d+\.tmp)?)?$")
_WAIT_FOR_RECORD_S = 1.0  # a holder writes its record right after locking; wait this long for it


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as recorded in its info file."""

    pid: int
    host: str
    started: str
    command: str

    def describe(self) -> str:
        """'pid 123 on host, started 2025-01-01 10:00:00: localr1 quantize ...'."""
        return f"pid {self.pid} on {self.host}, started {self.started}: {self.command}"

    def alive(self) -> bool:
        """Whether the holder may still run: always True for another host, else whether its pid exists."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def is_lock_artifact(name: str) -> bool:
    """A lock file, its info file or the info file's temporary (`.X.lock`, `.X.lock.info`, `.X.lock.info.N.tmp`)."""
    return _ARTIFACT.match(name) is not None


def _command() -> str:
    argv = list(sys.argv) or ["python"]
    if argv[0].endswith("__main__.py") or Path(argv[0]).name == "localr1":
        argv[0] = "localr1"
    return shlex.join(argv)


def this_run() -> Holder:
    """The record this process writes when it takes a lock."""
    return Holder(os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%d %H:%M:%S"), _command())


def read_holder(info: Path) -> Holder | None:
    """The record in an info file; None when missing or unreadable (being written, or a crashed writer)."""
    try:
        data = json.loads(info.read_text(encoding="utf-8"))
        return Holder(int(data["pid"]), str(data["host"]), str(data["started"]), str(data["command"]))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None


def _write_holder(info: Path, holder: Holder) -> None:
    temp = info.with_name(f"{info.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(json.dumps(asdict(holder)) + "\n", encoding="utf-8")
        os.replace(temp, info)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@dataclass
class _Held:
    lock: FileLock
    count: int


_held: dict[str, _Held] = {}
_guard = threading.Lock()


def _in_use(target: Path, alternative: str | None, holder: Holder | None) -> OutputInUseError:
    who = holder.describe() if holder else "its process recorded no details"
    other = f", or choose another {alternative}" if alternative else ""
    return OutputInUseError(f"{target} is in use by another localr1 run ({who}); wait for it to finish{other}")


def _acquire(lock_path: Path, target: Path, alternative: str | None) -> FileLock:
    """Take the lock now or fail at once, naming the holder."""
    info = lock_path.with_name(lock_path.name + INFO_SUFFIX)
    try:  # filelock reports a folder it cannot write in as "taken": find out first, with the system's reason
        os.close(os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
    except OSError as exc:
        raise file_system_error(exc, "create the lock file") from exc
    lock = FileLock(str(lock_path), fallback_to_soft=False)
    deadline = time.monotonic() + _WAIT_FOR_RECORD_S
    while True:
        try:
            lock.acquire(timeout=0)
            break
        except Timeout:
            holder = read_holder(info)
            # A record of a dead process is a killed run's leftover: the live holder has not written its own yet.
            if (holder is not None and holder.alive()) or time.monotonic() > deadline:
                raise _in_use(target, alternative, holder) from None
            time.sleep(0.05)
        except OSError as exc:
            raise file_system_error(exc, "lock", target) from exc
    try:
        _write_holder(info, this_run())
    except OSError as exc:
        _release(lock, lock_path)
        raise file_system_error(exc, "write", info) from exc
    except BaseException:
        _release(lock, lock_path)
        raise
    return lock


def _release(lock: FileLock, lock_path: Path) -> None:
    # Removed while still held: a run that opened the old file sees it unlinked and does not take it.
    for path in (lock_path.with_name(lock_path.name + INFO_SUFFIX), lock_path):
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
    lock.release()


@contextmanager
def _hold(lock_path: Path, target: Path, alternative: str | None) -> Iterator[None]:
    key = os.path.join(os.path.realpath(lock_path.parent), lock_path.name)  # one lock per file, whatever the path
    with _guard:
        held = _held.get(key)
        if held is None:
            held = _held[key] = _Held(_acquire(lock_path, target, alternative), 0)
        held.count += 1
    try:
        yield
    finally:
        with _guard:
            held.count -= 1
            if held.count == 0:
                del _held[key]
                _release(held.lock, lock_path)


def _missing_parents(directory: Path) -> list[Path]:
    """directory and its ancestors that do not exist, deepest first."""
    missing = []
    for path in (directory, *directory.parents):
        if path.exists():
            break
        missing.append(path)
    return missing


@contextmanager
def locked_dir(directory: Path, *, create: bool, alternative: str | None = "output directory") -> Iterator[None]:
    """Hold directory's run lock for the block (re-entrant within a process). With create, make the directory
    first; folders made here are removed again if the run leaves them empty. `alternative` completes the
    busy message's advice ("or choose another ...")."""
    if directory.exists() and not directory.is_dir():
        raise FileSystemError(f"{directory} is a file, not a folder; choose a folder")
    made = _missing_parents(directory) if create else []
    if made:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise file_system_error(exc, "create the output folder") from exc
    try:
        with _hold(directory / DIR_LOCK_NAME, directory, alternative):
            yield
    finally:
        for path in made:  # deepest first; a folder that holds anything stays
            with contextlib.suppress(OSError):
                path.rmdir()


@contextmanager
def locked_file(path: Path) -> Iterator[None]:
    """Hold an output file's run lock (`.NAME.lock` beside it) for the block."""
    with _hold(path.with_name(f".{path.name}.lock"), path, "output file"):
        yield
