"""The SQLite store: migrations from an empty database, messages, search, recovery, export."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from localr1.store import ConversationStore
from localr1.store.export import export_conversation
from localr1.store.migrations import MIGRATIONS, applied, migrate


def test_migrations_from_an_empty_database(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "empty.db")
    assert applied(conn) == []
    assert migrate(conn) == [name for name, _ in MIGRATIONS]
    assert applied(conn) == [name for name, _ in MIGRATIONS]
    assert migrate(conn) == []  # idempotent
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    assert {"conversations", "messages", "messages_fts", "messages_fts_update", "schema_migrations"} <= tables


def test_a_later_migration_applies_to_an_older_database(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db")
    applied(conn)
    with conn:
        for statement in MIGRATIONS[0][1].split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (MIGRATIONS[0][0],))
        conn.execute("INSERT INTO conversations (title, created_at, updated_at) VALUES ('old', 0, 0)")
        conn.execute("INSERT INTO messages (conversation_id, role, content, created_at, updated_at) "
                     "VALUES (1, 'user', 'ancient words', 0, 0)")
    assert migrate(conn) == [name for name, _ in MIGRATIONS[1:]]
    store = ConversationStore(tmp_path / "old.db")
    assert [h.message_id for h in store.search("ancient")] == [1]


def test_wal_mode_and_foreign_keys(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cid = store.create_conversation("t")
    store.add_message(cid, "user", "hello")
    store.delete_conversation(cid)
    assert store.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_messages_keep_thinking_apart_and_streaming_updates_are_searchable(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    cid = store.create_conversation("Math")
    store.add_message(cid, "user", "What is 2+2?")
    mid = store.add_message(cid, "assistant", "", status="streaming")
    store.update_message(mid, content="It is four.", thinking="two plus two", status="streaming")
    store.update_message(mid, content="It is four.", thinking="two plus two", status="complete",
                         stats={"generated_tokens": 5})
    messages = store.messages(cid)
    assert [(m.role, m.content, m.thinking, m.status) for m in messages] == [
        ("user", "What is 2+2?", "", "complete"),
        ("assistant", "It is four.", "two plus two", "complete"),
    ]
    assert messages[1].stats == {"generated_tokens": 5}
    hits = store.search("four")
    assert [(h.conversation_title, h.message_id) for h in hits] == [("Math", mid)]
    assert [hits[0].snippet[a:b] for a, b in hits[0].highlights] == ["four"]
    assert store.search("plu")[0].message_id == mid  # substring match, thinking searched too
    assert store.search('"') == [] and store.search("   ") == []


def test_streaming_messages_become_interrupted(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    cid = store.create_conversation("t")
    store.add_message(cid, "assistant", "partial", status="streaming")
    store.conn.execute("UPDATE messages SET stats = NULL")  # written by an older localr1: no writer recorded
    assert store.mark_interrupted() == 1
    assert store.messages(cid)[0].status == "interrupted"
    assert store.mark_interrupted() == 0


def test_corrupt_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"this is not a database" * 500)
    store = ConversationStore(path)
    assert store.recovered_from is not None and store.recovered_from.exists()
    assert store.recovered_from.read_bytes().startswith(b"this is not a database")
    assert store.conversations() == []
    store.create_conversation("fresh")
    assert [c.title for c in ConversationStore(path).conversations()] == ["fresh"]


def test_export_markdown_and_json(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    cid = store.create_conversation("A / B test", "demo")
    store.add_message(cid, "user", "Hi")
    store.add_message(cid, "assistant", "Hello!", thinking="be nice", status="stopped")
    md, js = export_conversation(store, cid, tmp_path / "out")
    text = md.read_text()
    assert text.startswith("# A / B test") and "<summary>Thinking</summary>" in text and "_(stopped)_" in text
    data = json.loads(js.read_text())
    assert data["title"] == "A / B test" and data["messages"][1]["thinking"] == "be nice"
    assert md.name == f"{cid:04d}-a-b-test.md"
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left
