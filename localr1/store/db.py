"""SQLite connections in autocommit mode, explicit transactions, and telling corruption from other errors."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26


class IntegrityCheckFailed(sqlite3.DatabaseError):
    """PRAGMA quick_check found the file damaged."""


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection that never opens transactions implicitly: every write goes through transaction()."""
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT; anything raised inside rolls the whole transaction back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def primary_code(exc: BaseException) -> int | None:
    """SQLite's primary result code of an error (extended codes folded), when it has one."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_corruption(exc: BaseException) -> bool:
    """True only when SQLite says the file is not a database or is malformed."""
    return isinstance(exc, IntegrityCheckFailed) or primary_code(exc) in (SQLITE_CORRUPT, SQLITE_NOTADB)


def is_user_facing(exc: BaseException) -> bool:
    """Errors that come from the file or the machine (locks, disk, permissions, damage), not from our SQL."""
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return False
    return isinstance(exc, sqlite3.OperationalError) or is_corruption(exc)


def explain(path: Path, exc: BaseException) -> str:
    """One line saying what went wrong with the database at path and what to do."""
    if is_locked(exc):
        return (f"the conversation database {path} is locked by another program (another localr1 chat?): "
                "close it and try again")
    name = getattr(exc, "sqlite_errorname", None)
    return f"the conversation database {path} failed: {exc}" + (f" ({name})" if name else "") + advice(path, exc)


def advice(path: Path, exc: BaseException) -> str:
    """What to do about a database that cannot be written (SQLite names only the symptom)."""
    code = primary_code(exc)
    if code == SQLITE_FULL:
        return f"; the disk holding {path.parent} is full: free some disk space and try again"
    if code in (SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_IOERR) and not os.access(path.parent, os.W_OK):
        return (f"; the folder {path.parent} cannot be written (SQLite keeps its journal beside the database): "
                "make it writable, or use --db PATH in a folder you can write to")
    return ""


def is_locked(exc: BaseException) -> bool:
    """Another connection holds a lock SQLite waited for in vain."""
    return primary_code(exc) in (SQLITE_BUSY, SQLITE_LOCKED)
