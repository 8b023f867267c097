"""Operating-system errors as one-line user errors: what failed, on which path, the system's reason, what to do."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localr1.errors import FileSystemError

_ADVICE = {
    errno.ENOSPC: "free some disk space or choose another location",
    errno.EDQUOT: "free some space within your quota or choose another location",
    errno.EROFS: "the disk is read-only: choose a location you can write to",
    errno.EACCES: "check the permissions, or choose a location you can write to",
    errno.EPERM: "check the permissions, or choose a location you can write to",
    errno.ENOENT: "check the path, or create the missing folder first",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "that is a folder: give the path of a file",
    errno.ENOTEMPTY: "the folder is not empty: choose another path",
    errno.EEXIST: "it already exists: choose another path",
    errno.EXDEV: "keep the files on one disk",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) and try again",
    errno.EIO: "the disk reported an input/output error: check it",
    errno.EFBIG: "the file passes this process's file size limit (ulimit -f) or the file system's: raise it",
    errno.ENOSYS: "this file system does not support file locks: choose a folder on a local disk",
    errno.ENOLCK: "this file system does not support file locks: choose a folder on a local disk",
}


def _paths(exc: OSError) -> str:
    names = [os.fsdecode(n) for n in (exc.filename, exc.filename2) if isinstance(n, str | bytes | os.PathLike)]
    return " -> ".join(names)


def os_error_message(exc: OSError, action: str | None = None, path: str | os.PathLike[str] | None = None) -> str:
    """e.g. "cannot write /x/manifest.json: No space left on device (ENOSPC); free some disk space ...".
    `path` names the file the user knows when the failing one was a temporary."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    code = errno.errorcode.get(exc.errno) if exc.errno is not None else None
    where = os.fspath(path) if path is not None else _paths(exc)
    head = f"cannot {action or 'use'}" if action or where else "a file operation failed"
    if where and where not in head:
        head += f" {where}"
    advice = _ADVICE.get(exc.errno or 0, "check the path and try again")
    return f"{head}: {reason}{f' ({code})' if code else ''}; {advice}"


def file_system_error(exc: OSError, action: str | None = None,
                      path: str | os.PathLike[str] | None = None) -> FileSystemError:
    """The user error for an OSError (the caller raises it `from exc`)."""
    return FileSystemError(os_error_message(exc, action, path))


@contextmanager
def os_errors(action: str, path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Turn any OSError inside the block into a one-line FileSystemError ("cannot ACTION PATH: reason; advice")."""
    try:
        yield
    except OSError as exc:
        raise file_system_error(exc, action, path) from exc


def ensure_folder(folder: Path, what: str) -> None:
    """mkdir -p folder; a file in the way (the folder itself or an ancestor) is named, with what to do."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (folder, *folder.parents) if p.exists()), folder)
        raise FileSystemError(f"cannot create the {what} {folder}: {blocker} is a file, not a folder; it was left as "
                              "it was: move it away and try again") from None
    except OSError as exc:
        raise file_system_error(exc, f"create the {what}", folder) from exc
