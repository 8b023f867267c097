"""The conversation repository: SQLite (WAL) under the data folder, with corrupt files moved aside."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from localr1.paths import data_dir
from localr1.store.migrations import migrate

Role = Literal["system", "user", "assistant"]
Status = Literal["complete", "streaming", "stopped", "interrupted", "error"]


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


@dataclass(frozen=True)
class SearchHit:
    """A message that matched a full-text search."""

    conversation_id: int
    conversation_title: str
    message_id: int
    snippet: str


def default_db_path() -> Path:
    """conversations.db in the data folder (LOCALR1_HOME moves it)."""
    return data_dir() / "conversations.db"


class ConversationStore:
    """All reads and writes of conversations and messages."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_db_path()
        self.recovered_from: Path | None = None
        self.conn = self._open()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            conn.close()
            raise sqlite3.DatabaseError("integrity check failed")
        migrate(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect()
        except sqlite3.DatabaseError:
            self.recovered_from = self._move_aside()
            return self._connect()

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

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    # conversations
    def create_conversation(self, title: str = "New chat", model: str | None = None) -> int:
        """A new empty conversation; returns its id."""
        now = time.time()
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO conversations (title, model, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (title, model, now, now),
            )
        return int(cur.lastrowid or 0)

    def conversations(self) -> list[Conversation]:
        """All conversations, most recently used first."""
        rows = self.conn.execute("SELECT * FROM conversations ORDER BY updated_at DESC, id DESC")
        return [Conversation(r["id"], r["title"], r["model"], r["created_at"], r["updated_at"]) for r in rows]

    def conversation(self, conversation_id: int) -> Conversation | None:
        """One conversation's header."""
        r = self.conn.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return Conversation(r["id"], r["title"], r["model"], r["created_at"], r["updated_at"]) if r else None

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        """Give a conversation a new title."""
        with self.conn:
            self.conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (title.strip(), conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete a conversation and its messages."""
        with self.conn:
            self.conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

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
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO messages (conversation_id, role, content, thinking, status, model, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, role, content, thinking, status, model, now, now),
            )
            self.conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
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
        """Save a message's current text (called while streaming and at the end)."""
        with self.conn:
            self.conn.execute(
                "UPDATE messages SET content = ?, thinking = ?, status = ?, stats = COALESCE(?, stats), "
                "updated_at = ? WHERE id = ?",
                (content, thinking, status, json.dumps(stats) if stats is not None else None, time.time(), message_id),
            )

    def delete_message(self, message_id: int) -> None:
        """Remove one message."""
        with self.conn:
            self.conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        """A conversation's messages in order."""
        rows = self.conn.execute(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        )
        return [
            StoredMessage(
                r["id"], r["conversation_id"], r["role"], r["content"], r["thinking"], r["status"], r["model"],
                json.loads(r["stats"]) if r["stats"] else {},
            )
            for r in rows
        ]

    def mark_interrupted(self) -> int:
        """Messages left 'streaming' by a process that died are marked interrupted; returns how many."""
        with self.conn:
            cur = self.conn.execute("UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'")
        return cur.rowcount

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Full-text search over answers and thinking; words are matched as prefixes."""
        terms = [t.replace('"', "") for t in query.split() if t.replace('"', "")]
        if not terms:
            return []
        match = " ".join(f'"{t}"*' for t in terms)
        rows = self.conn.execute(
            "SELECT m.conversation_id, c.title, m.id, snippet(messages_fts, -1, '[', ']', '…', 12) AS snip "
            "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            "JOIN conversations c ON c.id = m.conversation_id "
            "WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?",
            (match, limit),
        )
        return [SearchHit(r[0], r[1], r[2], r[3]) for r in rows]
