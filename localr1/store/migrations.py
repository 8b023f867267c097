"""Named schema migrations, applied in order and recorded in the `schema_migrations` table."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from localr1.store.db import transaction

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_conversations_and_messages",
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL,
            model TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL DEFAULT '',
            thinking TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'streaming', 'stopped', 'interrupted', 'error')),
            model TEXT,
            stats TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
        """,
    ),
    (
        "0002_message_search",
        """
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, thinking, content='messages', content_rowid='id', tokenize='unicode61'
        );
        INSERT INTO messages_fts(rowid, content, thinking) SELECT id, content, thinking FROM messages;
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, content, thinking) VALUES (new.id, new.content, new.thinking);
        END;
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, thinking)
                VALUES ('delete', old.id, old.content, old.thinking);
        END;
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, thinking ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, thinking)
                VALUES ('delete', old.id, old.content, old.thinking);
            INSERT INTO messages_fts(rowid, content, thinking) VALUES (new.id, new.content, new.thinking);
        END;
        """,
    ),
    (
        # unicode61 splits on spaces and finds no word inside Chinese or Japanese text; trigram finds
        # any substring of three characters or more (shorter terms are searched with LIKE).
        "0003_search_trigram",
        """
        DROP TRIGGER messages_fts_insert;
        DROP TRIGGER messages_fts_delete;
        DROP TRIGGER messages_fts_update;
        DROP TABLE messages_fts;
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, thinking, content='messages', content_rowid='id', tokenize='trigram'
        );
        INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, content, thinking) VALUES (new.id, new.content, new.thinking);
        END;
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, thinking)
                VALUES ('delete', old.id, old.content, old.thinking);
        END;
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, thinking ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, thinking)
                VALUES ('delete', old.id, old.content, old.thinking);
            INSERT INTO messages_fts(rowid, content, thinking) VALUES (new.id, new.content, new.thinking);
        END;
        """,
    ),
    (
        # A new status, 'truncated' (cut off at the token limit), needs the CHECK constraint rebuilt:
        # SQLite cannot alter one. Ids are kept, so the search index stays valid; its triggers are
        # dropped with the old table and made again. Answers stored before as 'complete' whose stats
        # say they stopped at the limit are marked truncated.
        "0004_message_status_truncated",
        """
        CREATE TABLE messages_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL DEFAULT '',
            thinking TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'streaming', 'stopped', 'interrupted', 'error', 'truncated')),
            model TEXT,
            stats TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        INSERT INTO messages_new (id, conversation_id, role, content, thinking, status, model, stats,
                                  created_at, updated_at)
            SELECT id, conversation_id, role, content, thinking,
                   CASE WHEN status = 'complete' AND json_valid(stats)
                             AND json_extract(stats, '$.stop_reason') = 'length' THEN 'truncated'
                        ELSE status END,
                   model, stats, created_at, updated_at
            FROM messages WHERE conversation_id IN (SELECT id FROM conversations);
        DROP TABLE messages;
        ALTER TABLE messages_new RENAME TO messages;
        CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, content, thinking) VALUES (new.id, new.content, new.thinking);
        END;
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, thinking)
                VALUES ('delete', old.id, old.content, old.thinking);
        END;
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, thinking ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, thinking)
                VALUES ('delete', old.id, old.content, old.thinking);
            INSERT INTO messages_fts(rowid, content, thinking) VALUES (new.id, new.content, new.thinking);
        END;
        """,
    ),
    (
        # The sidebar reads the most recent conversations a page at a time: without an index every page
        # sorted the whole table (10-15 ms at 10,000 conversations).
        "0005_conversations_by_recency",
        """
        CREATE INDEX conversations_by_recency ON conversations(updated_at, id);
        """,
    ),
    (
        # Per-conversation reasoning settings (the thinking budget, as typed: "2000", "90s"), in a table
        # of their own so the conversation rows stay as they are; deleting a conversation deletes them.
        "0006_conversation_settings",
        """
        CREATE TABLE conversation_settings (
            conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
            think_budget TEXT
        );
        """,
    ),
)

class MigrationError(Exception):
    """A migration could not be applied; it was rolled back whole and nothing was recorded."""

    def __init__(self, name: str, cause: sqlite3.Error) -> None:
        super().__init__(f"migration {name} failed: {cause}")
        self.name, self.cause = name, cause


class NewerDatabaseError(Exception):
    """The database records migrations this version does not know: a newer localr1 wrote it."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(", ".join(names))
        self.names = list(names)


class ForeignDatabaseError(Exception):
    """The database holds tables but no `schema_migrations`: another program's, not localr1's."""


def check_is_ours(conn: sqlite3.Connection) -> None:
    """Raise ForeignDatabaseError for a database with tables of its own and no localr1 schema; reads only."""
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if tables and "schema_migrations" not in tables:
        raise ForeignDatabaseError(", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else ""))


def check_not_newer(conn: sqlite3.Connection, migrations: Sequence[tuple[str, str]] = MIGRATIONS) -> None:
    """Raise NewerDatabaseError when the database records a migration not in `migrations`; reads only.

    Run before anything that writes (the journal mode, a migration): a newer schema may hold what this
    version would misread or lose, so the file must stay exactly as it is.
    """
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
    if has_table is None:
        return
    known = {name for name, _ in migrations}
    unknown = [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")
               if row[0] not in known]
    if unknown:
        raise NewerDatabaseError(unknown)


def applied(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations already applied, in order."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")]


def migrate(conn: sqlite3.Connection, migrations: Sequence[tuple[str, str]] = MIGRATIONS) -> list[str]:
    """Apply every pending migration, each in its own transaction; returns the names applied.

    Python's sqlite3 opens no transaction for DDL unless asked, so each migration runs between an
    explicit BEGIN IMMEDIATE and COMMIT: a failure rolls back every statement and the record.
    """
    previous = conn.isolation_level
    conn.isolation_level = None  # we issue BEGIN/COMMIT ourselves
    new: list[str] = []
    try:
        done = set(applied(conn))
        for name, sql in migrations:
            if name in done:
                continue
            try:
                with transaction(conn):
                    # Checked inside the write lock: another process may have applied it meanwhile.
                    if name in applied(conn):
                        continue
                    for statement in _statements(sql):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                                 (name, time.time()))
            except sqlite3.Error as exc:
                raise MigrationError(name, exc) from exc
            new.append(name)
    finally:
        conn.isolation_level = previous
    return new


def _statements(sql: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    current = ""
    for line in sql.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
