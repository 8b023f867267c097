"""A failed migration or a locked file never costs the history: only real corruption moves a file aside."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from localr1.errors import StoreError
from localr1.store import ConversationStore
from localr1.store.migrations import MIGRATIONS, MigrationError, applied, migrate

FAILING = ("0099_test_extra", """
    CREATE TABLE extra_a (x INTEGER);
    CREATE INDEX extra_a_x ON extra_a(x);
    ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
    INSERT INTO no_such_table VALUES (1);
    CREATE TABLE extra_b (y INTEGER);
""")
FIXED = ("0099_test_extra", """
    CREATE TABLE extra_a (x INTEGER);
    CREATE INDEX extra_a_x ON extra_a(x);
    ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE extra_b (y INTEGER);
""")


def _history(path: Path) -> int:
    store = ConversationStore(path)
    cid = store.create_conversation("Keep me")
    store.add_message(cid, "user", "precious words")
    store.add_message(cid, "assistant", "a precious answer", thinking="careful thought")
    store.close()
    return cid


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()


def _columns(path: Path, table: str) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
    finally:
        conn.close()


def _assert_history_intact(path: Path, cid: int, migrations: tuple[tuple[str, str], ...] = MIGRATIONS) -> None:
    store = ConversationStore(path, migrations=migrations)
    assert [c.title for c in store.conversations()] == ["Keep me"]
    assert [(m.content, m.thinking) for m in store.messages(cid)] == [
        ("precious words", ""), ("a precious answer", "careful thought")]
    assert {h.message_id for h in store.search("precious")} == {m.id for m in store.messages(cid)}
    store.close()


def test_a_migration_failing_halfway_rolls_back_whole_and_applies_on_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    cid = _history(path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(StoreError, match=r"0099_test_extra.*no such table: no_such_table.*left as it was"):
        ConversationStore(path, migrations=(*MIGRATIONS, FAILING))
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == \
        [n for n in before if not n.endswith(("-wal", "-shm"))]  # nothing moved aside
    assert not {"extra_a", "extra_a_x", "extra_b"} & _tables(path)
    assert "pinned" not in _columns(path, "conversations")
    conn = sqlite3.connect(path)
    assert applied(conn) == [name for name, _ in MIGRATIONS]
    conn.close()
    _assert_history_intact(path, cid)

    store = ConversationStore(path, migrations=(*MIGRATIONS, FIXED))
    assert {"extra_a", "extra_a_x", "extra_b"} <= _tables(path) and "pinned" in _columns(path, "conversations")
    assert applied(store.conn)[-1] == "0099_test_extra"
    store.close()
    _assert_history_intact(path, cid, (*MIGRATIONS, FIXED))


def test_migrate_rolls_back_on_a_connection_in_pythons_default_mode(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "c.db")  # Python's default isolation: DDL is never in a transaction
    migrate(conn)
    with pytest.raises(MigrationError, match="0099_test_extra"):
        migrate(conn, (*MIGRATIONS, FAILING))
    assert not conn.in_transaction
    assert not {"extra_a", "extra_b"} & {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "0099_test_extra" not in applied(conn)
    assert migrate(conn, (*MIGRATIONS, FIXED)) == ["0099_test_extra"]


def test_a_locked_database_is_a_clear_error_and_is_not_moved(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    cid = _history(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")  # another program writing, holding the file
    try:
        with pytest.raises(StoreError) as caught:
            ConversationStore(path, busy_timeout_s=0.2)
        message = str(caught.value)
        assert "is locked by another program" in message and str(path) in message and "\n" not in message
        assert not list(tmp_path.glob("*.corrupt-*"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _assert_history_intact(path, cid)


def test_a_write_while_another_program_holds_the_lock_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    cid = _history(path)
    store = ConversationStore(path, busy_timeout_s=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked by another program"):
            store.add_message(cid, "user", "not now")
        assert not store.conn.in_transaction
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.add_message(cid, "user", "now")
    assert [m.content for m in store.messages(cid)][-1] == "now"


def test_a_malformed_database_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = ConversationStore(path)
    cid = store.create_conversation("doomed")
    for i in range(200):
        store.add_message(cid, "user", f"message {i} " * 50)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 3: page * 6] = b"\xa5" * (page * 3)  # wreck b-tree pages, keep the header valid
    path.write_bytes(bytes(data))
    fresh = ConversationStore(path)
    assert fresh.recovered_from is not None and fresh.recovered_from.exists()
    assert fresh.conversations() == []


def test_an_unusable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the folder"):
        ConversationStore(blocker / "sub" / "c.db")
    assert blocker.read_text() == "not a folder"
