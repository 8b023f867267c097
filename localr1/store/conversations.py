"""The conversation repository: SQLite (WAL) under the data folder, with corrupt files moved aside."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from localr1.errors import StoreError
from localr1.oserrors import os_error_message
from localr1.paths import data_dir
from localr1.store.db import (
    IntegrityCheckFailed,
    advice,
    connect,
    explain,
    is_corruption,
    is_locked,
    is_user_facing,
    transaction,
)
from localr1.store.migrations import (
    MIGRATIONS,
    ForeignDatabaseError,
    MigrationError,
    NewerDatabaseError,
    check_is_ours,
    check_not_newer,
    migrate,
)
from localr1.store.search import SearchHit, search_messages

Role = Literal["system", "user", "assistant"]
Status = Literal["complete", "streaming", "stopped", "interrupted", "error", "truncated"]


@dataclass(frozen=True)
class Conversation:
    """A conversation's header."""

    id: int
    title: str
    model: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class StoredMessage:
    """One stored message; thinking is kept apart from the answer."""

    id: int
    conversation_id: int
    role: Role
    content: str
    thinking: str
    status: Status
    model: str | None
    stats: dict[str, Any] = field(default_factory=dict)


def _stats(raw: str | None) -> dict[str, Any]:
    """A message's stats; a damaged value reads as none rather than hiding the conversation."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _writer() -> dict[str, Any]:
    """This process, as recorded on a message it streams: its id and start time (a reused id has another)."""
    import psutil

    return {"pid": os.getpid(), "started": psutil.Process().create_time()}


def _writer_alive(writer: object) -> bool:
    """Whether the process recorded on a streaming message still runs (another chat on the same database)."""
    import psutil

    if not isinstance(writer, dict) or not isinstance(writer.get("pid"), int):
        return False
    try:
        process = psutil.Process(writer["pid"])
        started = process.create_time()
        if process.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped by its parent: it writes no more
            return False
    except psutil.AccessDenied:
        return True
    except (psutil.Error, OSError, ValueError):
        return False
    return isinstance(writer.get("started"), int | float) and abs(started - writer["started"]) < 1.0


def newer_database_message(path: Path, exc: NewerDatabaseError) -> str:
    """The one line for a database a newer localr1 wrote."""
    return (f"the conversation database {path} was written by a newer localr1 (migration {exc}); upgrade localr1, "
            "or use --db PATH to start another database (this one was left as it was)")


def default_db_path() -> Path:
    """conversations.db in the data folder (LOCALR1_HOME moves it)."""
    return data_dir() / "conversations.db"


class ConversationStore:
    """All reads and writes of conversations and messages.

    Only a file SQLite calls not a database or malformed is moved aside (and a fresh one started);
    any other failure (locked, read-only, a failed migration, written by a newer localr1) is a StoreError
    that touches nothing. A file the user named (`named`, chat's --db) is never moved aside nor its folder
    created: either is a StoreError.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        named: bool = False,
        migrations: Sequence[tuple[str, str]] = MIGRATIONS,
        busy_timeout_s: float = 5.0,
    ) -> None:
        self.path = path or default_db_path()
        self.named = named
        self.recovered_from: Path | None = None
        self._migrations = migrations
        self._busy_timeout_s = busy_timeout_s
        self.conn = self._open()

    def _connect(self) -> sqlite3.Connection:
        conn = connect(self.path, self._busy_timeout_s)
        try:
            check_not_newer(conn, self._migrations)
            # checked before switching to WAL, which writes the header: a damaged file is left as it was
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise IntegrityCheckFailed("integrity check failed")
            check_is_ours(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn, self._migrations)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self) -> sqlite3.Connection:
        if self.named and not self.path.parent.is_dir():
            raise StoreError(f"the folder {self.path.parent} for the conversation database {self.path.name} does "
                             "not exist; create it first, or leave out --db to use the default database")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            blocker = next((p for p in (self.path.parent, *self.path.parent.parents) if p.exists()), self.path.parent)
            raise StoreError(f"cannot create the folder {self.path.parent} for conversations: {blocker} is a file, not "
                             "a folder; it was left as it was: move it away, or use --db PATH to name another "
                             "database") from None
        except OSError as exc:
            raise StoreError(os_error_message(exc, "create the folder for conversations", self.path.parent)) from None
        self._check_is_a_file()
        try:
            return self._connect()
        except NewerDatabaseError as exc:
            raise StoreError(newer_database_message(self.path, exc)) from None
        except ForeignDatabaseError as exc:
            raise StoreError(f"{self.path} is another program's SQLite database (tables {exc}), not localr1's "
                             "conversations; it was left as it was: name another file with --db") from None
        except (sqlite3.Error, MigrationError) as exc:
            cause = exc.cause if isinstance(exc, MigrationError) else exc
            if not is_corruption(cause):
                raise StoreError(self._explain_open(exc)) from None
            if self.named:
                raise StoreError(f"{self.path} is not a SQLite database, or is damaged ({cause}); it was left as "
                                 "it was: name another file with --db, or leave out --db for the default") from None
        try:
            self.recovered_from = self._move_aside()
        except OSError as exc:
            raise StoreError(f"the conversation database {self.path} is damaged and could not be moved aside: "
                             f"{exc.strerror or exc}") from None
        try:
            return self._connect()
        except (sqlite3.Error, MigrationError) as exc:
            raise StoreError(self._explain_open(exc)) from None

    def _check_is_a_file(self) -> None:
        """A folder, a pipe or a device in the database's place, or a name the system refuses, is a StoreError."""
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(os_error_message(exc, "open the conversation database", self.path)) from None
        if stat.S_ISDIR(mode):
            raise StoreError(f"{self.path} is a folder, not a database file; it was left as it was: use --db PATH to "
                             f"name a database file (e.g. {self.path / 'conversations.db'})")
        if not stat.S_ISREG(mode):
            raise StoreError(f"{self.path} is not a regular file; it was left as it was: use --db PATH to name a "
                             "database file")

    def _explain_open(self, exc: sqlite3.Error | MigrationError) -> str:
        cause = exc.cause if isinstance(exc, MigrationError) else exc
        if isinstance(exc, MigrationError) and is_user_facing(cause) and not is_locked(cause):
            return (f"could not update the conversation database {self.path} to this version of localr1 "
                    f"({exc}){advice(self.path, cause)}; it was left as it was")
        return explain(self.path, cause) + ("" if is_locked(cause) else "; it was left as it was")

    def _move_aside(self) -> Path:
        """Rename an unreadable database (and its WAL files) so a fresh one can start."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        shutil.move(self.path, target)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                shutil.move(side, target.with_name(target.name + suffix))
        return target

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """Errors from the file or the machine become a StoreError."""
        try:
            yield self.conn
        except sqlite3.Error as exc:
            if is_user_facing(exc):
                raise StoreError(explain(self.path, exc)) from None
            raise

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One transaction, rolled back whole on any error."""
        with self._reading() as conn, transaction(conn):
            yield conn

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    # conversations
    def create_conversation(self, title: str = "New chat", model: str | None = None) -> int:
        """A new empty conversation; returns its id."""
        now = time.time()
        with self._writing() as conn:
            cur = conn.execute(
                "INSERT INTO conversations (title, model, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (title, model, now, now),
            )
        return int(cur.lastrowid or 0)

    def conversations(self, *, limit: int | None = None, after: Conversation | None = None) -> list[Conversation]:
        """Conversations, most recently used first: all, or a page of `limit` that follows `after`."""
        where, params = "", [] if after is None else [after.updated_at, after.updated_at, after.id]
        if after is not None:
            where = "WHERE updated_at < ? OR (updated_at = ? AND id < ?) "
        with self._reading() as conn:
            rows = conn.execute(f"SELECT * FROM conversations {where}ORDER BY updated_at DESC, id DESC LIMIT ?",
                                (*params, -1 if limit is None else limit)).fetchall()
        return [Conversation(r["id"], r["title"], r["model"], r["created_at"], r["updated_at"]) for r in rows]

    def conversation(self, conversation_id: int) -> Conversation | None:
        """One conversation's header."""
        with self._reading() as conn:
            r = conn.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return Conversation(r["id"], r["title"], r["model"], r["created_at"], r["updated_at"]) if r else None

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        """Give a conversation a new title."""
        with self._writing() as conn:
            conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (title.strip(), conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete a conversation and its messages."""
        with self._writing() as conn:
            conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def think_budget(self, conversation_id: int) -> str | None:
        """The conversation's own thinking budget ("2000", "90s"), or None to use the settings'."""
        with self._reading() as conn:
            row = conn.execute("SELECT think_budget FROM conversation_settings WHERE conversation_id = ?",
                               (conversation_id,)).fetchone()
        return row[0] if row else None

    def set_think_budget(self, conversation_id: int, budget: str | None) -> None:
        """Store (or with None, forget) the conversation's thinking budget."""
        with self._writing() as conn:
            conn.execute(
                "INSERT INTO conversation_settings (conversation_id, think_budget) VALUES (?, ?) "
                "ON CONFLICT(conversation_id) DO UPDATE SET think_budget = excluded.think_budget",
                (conversation_id, budget),
            )

    # messages
    def add_message(
        self,
        conversation_id: int,
        role: Role,
        content: str,
        *,
        thinking: str = "",
        status: Status = "complete",
        model: str | None = None,
    ) -> int:
        """Append a message; returns its id."""
        now = time.time()
        stats = json.dumps({"writer": _writer()}) if status == "streaming" else None
        with self._writing() as conn:
            cur = conn.execute(
                "INSERT INTO messages (conversation_id, role, content, thinking, status, model, stats, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, role, content, thinking, status, model, stats, now, now),
            )
            conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
        return int(cur.lastrowid or 0)

    def update_message(
        self,
        message_id: int,
        *,
        content: str,
        thinking: str,
        status: Status,
        stats: dict[str, Any] | None = None,
    ) -> None:
        """Save a message's current text (called while streaming and at the end; the end forgets the writer)."""
        with self._writing() as conn:
            conn.execute(
                "UPDATE messages SET content = ?, thinking = ?, status = ?, stats = COALESCE(?, CASE WHEN ? != "
                "'streaming' AND json_valid(stats) THEN json_remove(stats, '$.writer') ELSE stats END), "
                "updated_at = ? WHERE id = ?",
                (content, thinking, status, json.dumps(stats) if stats is not None else None, status, time.time(),
                 message_id),
            )

    def delete_message(self, message_id: int) -> None:
        """Remove one message."""
        with self._writing() as conn:
            conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def messages(self, conversation_id: int, *, before_id: int | None = None, after_id: int | None = None,
                 limit: int | None = None) -> list[StoredMessage]:
        """A conversation's messages in order: all of them, or a page that reads only `limit` rows.

        With `limit`, the newest messages before `before_id` (or the newest of all); with `after_id`,
        the oldest messages after it.
        """
        params: tuple[int, ...] = ()
        if after_id is not None:
            sql, params = "AND id > ? ORDER BY id LIMIT ?", (after_id, -1 if limit is None else limit)
        elif limit is not None or before_id is not None:
            sql = "AND id < ? ORDER BY id DESC LIMIT ?"
            params = (before_id if before_id is not None else sys.maxsize, -1 if limit is None else limit)
        else:
            sql = "ORDER BY id"
        with self._reading() as conn:
            rows = conn.execute(f"SELECT * FROM messages WHERE conversation_id = ? {sql}",
                                (conversation_id, *params)).fetchall()
        if sql.endswith("DESC LIMIT ?"):
            rows.reverse()
        return [
            StoredMessage(
                r["id"], r["conversation_id"], r["role"], r["content"], r["thinking"], r["status"], r["model"],
                _stats(r["stats"]),
            )
            for r in rows
        ]

    def message_span(self, conversation_id: int) -> tuple[int, int] | None:
        """The first and last message ids of a conversation (None when it has none), read from the index."""
        with self._reading() as conn:
            row = conn.execute("SELECT min(id), max(id) FROM messages WHERE conversation_id = ?",
                               (conversation_id,)).fetchone()
        return None if row[0] is None else (int(row[0]), int(row[1]))

    def prompt_history(self, conversation_id: int) -> list[tuple[Role, str]]:
        """Role and answer text of every message, oldest first: what a prompt is built from (no thinking)."""
        with self._reading() as conn:
            rows = conn.execute("SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY id",
                                (conversation_id,)).fetchall()
        return [(r["role"], r["content"]) for r in rows]

    def mark_interrupted(self) -> int:
        """Messages left 'streaming' by a process that died are marked interrupted; returns how many.

        One that another running chat is streaming into (the same database open twice) is left alone.
        """
        with self._writing() as conn:
            rows = conn.execute("SELECT id, stats FROM messages WHERE status = 'streaming'").fetchall()
            dead = [(r["id"],) for r in rows if not _writer_alive(_stats(r["stats"]).get("writer"))]
            conn.executemany("UPDATE messages SET status = 'interrupted' WHERE id = ?", dead)
        return len(dead)

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Messages whose answer or thinking contains every word of the query (any script, any case)."""
        with self._reading() as conn:
            return search_messages(conn, query, limit)
