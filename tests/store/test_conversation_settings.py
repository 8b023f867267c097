"""The per-conversation thinking budget: migration 0006 from an empty database and from the previous schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from localr1.store import ConversationStore
from localr1.store.migrations import MIGRATIONS, applied, migrate

PREVIOUS = [m for m in MIGRATIONS if m[0] != "0006_conversation_settings"]


def test_an_empty_database_gets_the_table_and_budgets_round_trip(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "fresh.db")
    cid = store.create_conversation("Maths")
    assert store.think_budget(cid) is None
    store.set_think_budget(cid, "2000")
    store.set_think_budget(cid, "90s")  # replaced, not added
    assert store.think_budget(cid) == "90s"
    store.set_think_budget(cid, None)
    assert store.think_budget(cid) is None
    store.close()


def test_a_database_of_the_previous_schema_is_migrated_with_its_history(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    migrate(conn, PREVIOUS)
    conn.execute("INSERT INTO conversations (title, model, created_at, updated_at) VALUES ('Old', NULL, 1, 1)")
    conn.commit()
    assert "0006_conversation_settings" not in applied(conn)
    conn.close()
    store = ConversationStore(path)
    (old,) = store.conversations()
    assert old.title == "Old" and store.think_budget(old.id) is None
    store.set_think_budget(old.id, "500")
    assert store.think_budget(old.id) == "500"
    store.close()
    conn = sqlite3.connect(path)
    assert applied(conn)[-1] == "0006_conversation_settings"
    conn.close()


def test_deleting_a_conversation_deletes_its_budget(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "d.db")
    cid = store.create_conversation("Gone")
    store.set_think_budget(cid, "100")
    store.delete_conversation(cid)
    with sqlite3.connect(tmp_path / "d.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM conversation_settings").fetchone()[0] == 0
    store.close()
