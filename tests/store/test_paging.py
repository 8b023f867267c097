"""Paged reads: a page of messages or conversations reads that page's rows, not the whole table."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from localr1.store import ConversationStore
from tests.tui.history import add_conversation, add_history


def count_message_rows(store: ConversationStore) -> Callable[[], int]:
    """Count the message rows SQLite hands to Python from now on; returns a reader of the count."""
    seen = [0]
    row = sqlite3.Row

    def factory(cursor: sqlite3.Cursor, values: tuple[object, ...]) -> sqlite3.Row:
        if cursor.description and {"role", "conversation_id"} <= {c[0] for c in cursor.description}:
            seen[0] += 1
        return row(cursor, values)

    store.conn.row_factory = factory
    return lambda: seen[0]


def test_newest_page_older_pages_and_pages_after(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    cid = add_conversation(store, 100, long=False)
    ids = [m.id for m in store.messages(cid)]
    rows = count_message_rows(store)
    newest = store.messages(cid, limit=10)
    assert [m.id for m in newest] == ids[-10:] and rows() == 10
    older = store.messages(cid, before_id=newest[0].id, limit=10)
    assert [m.id for m in older] == ids[-20:-10]
    after = store.messages(cid, after_id=ids[4], limit=3)
    assert [m.id for m in after] == ids[5:8]
    assert store.messages(cid, before_id=ids[2], limit=10) == store.messages(cid)[:2]
    assert rows() == 10 + 10 + 3 + 2 + 100


def test_messages_of_other_conversations_never_leak_into_a_page(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    a = add_conversation(store, 6, long=False)
    b = add_conversation(store, 6, long=False)
    assert {m.conversation_id for m in store.messages(b, before_id=10**9, limit=50)} == {b}
    assert {m.conversation_id for m in store.messages(a, after_id=0, limit=50)} == {a}


def test_prompt_history_is_every_answer_without_thinking(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    cid = add_conversation(store, 4)
    history = store.prompt_history(cid)
    assert [role for role, _ in history] == ["user", "assistant", "user", "assistant"]
    assert history[1][1].startswith("Answer a0001") and "Thinking" not in history[1][1]


def test_conversation_pages_follow_recency_without_gaps(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    add_history(store, 120, messages_each=0)
    everything = store.conversations()
    pages, after = [], None
    while page := store.conversations(limit=50, after=after):
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [50, 50, 20]
    assert [c.id for p in pages for c in p] == [c.id for c in everything]
    assert everything[0].title == "Conversation c00119"


def test_conversations_updated_in_the_same_instant_page_by_id(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    ids = [store.create_conversation(f"t{i}") for i in range(5)]
    store.conn.execute("UPDATE conversations SET updated_at = 1")
    first = store.conversations(limit=2)
    rest = store.conversations(limit=10, after=first[-1])
    assert [c.id for c in first + rest] == sorted(ids, reverse=True)


def test_the_recency_page_uses_an_index(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    plan = " ".join(str(tuple(r)) for r in store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM conversations WHERE updated_at < 1 OR (updated_at = 1 AND id < 1) "
        "ORDER BY updated_at DESC, id DESC LIMIT 50"))
    assert "conversations_by_recency" in plan and "TEMP B-TREE" not in plan
