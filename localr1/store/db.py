"""SQLite connections in autocommit mode, explicit transactions, and telling corruption from other errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_CORRUPT = 11
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
    return f"the conversation database {path} failed: {exc}" + (f" ({name})" if name else "")


def is_locked(exc: BaseException) -> bool:
    """Another connection holds a lock SQLite waited for in vain."""
    return primary_code(exc) in (SQLITE_BUSY, SQLITE_LOCKED)
