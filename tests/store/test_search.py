"""Search: Chinese and Japanese text, short words, an index carried over from the old schema, exact highlights."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from localr1.store import ConversationStore, SearchHit
from localr1.store.migrations import MIGRATIONS, migrate
from localr1.tui.screens.search import hit_text

CHINESE = "我今天学习了机器学习和深度学习"
JAPANESE = "私は昨日東京で美味しいラーメンを食べました"


def _store(tmp_path: Path, *texts: str) -> tuple[ConversationStore, list[int]]:
    store = ConversationStore(tmp_path / "c.db")
    cid = store.create_conversation("Notes")
    return store, [store.add_message(cid, "assistant", text) for text in texts]


def _marked(hit: SearchHit) -> list[str]:
    return [hit.snippet[a:b] for a, b in hit.highlights]


def test_chinese_and_japanese_words_inside_sentences_are_found(tmp_path: Path) -> None:
    store, (zh, ja, _) = _store(tmp_path, CHINESE, JAPANESE, "plain English text")
    hits = store.search("机器学习")
    assert [h.message_id for h in hits] == [zh] and _marked(hits[0]) == ["机器学习"]
    assert [h.message_id for h in store.search("深度学习")] == [zh]
    hits = store.search("ラーメン")
    assert [h.message_id for h in hits] == [ja] and _marked(hits[0]) == ["ラーメン"]
    assert store.search("机器学习 深度学习")[0].message_id == zh  # every word must be there
    assert store.search("机器学习 ラーメン") == []


def test_two_character_words_are_found(tmp_path: Path) -> None:
    store, (zh, ja, en) = _store(tmp_path, CHINESE, JAPANESE, "an AI model in Go")
    hits = store.search("学习")
    assert [h.message_id for h in hits] == [zh] and _marked(hits[0]) == ["学习", "学习", "学习"]
    assert [h.message_id for h in store.search("東京")] == [ja]
    assert [h.message_id for h in store.search("ai")] == [en]
    assert [h.message_id for h in store.search("学习 机器学习")] == [zh]  # mixed lengths: same result
    assert store.search("学习 東京") == []


def test_like_wildcards_in_a_short_query_match_literally(tmp_path: Path) -> None:
    store, (pct, _) = _store(tmp_path, "grew 5% this year", "nothing special")
    assert [h.message_id for h in store.search("5%")] == [pct]
    assert [h.message_id for h in store.search("%")] == [pct] and store.search("_") == []


def test_brackets_in_the_text_are_never_taken_for_highlights(tmp_path: Path) -> None:
    store, (mid,) = _store(tmp_path, "index with arr[i] and look up dict[key], then [done]")
    hit = store.search("dict")[0]
    assert hit.message_id == mid
    assert "arr[i]" in hit.snippet and "dict[key]" in hit.snippet and "[done]" in hit.snippet
    assert _marked(hit) == ["dict"]
    text = hit_text(hit)
    styled = [(text.plain[s.start:s.end], str(s.style)) for s in text.spans]
    assert styled == [("Notes", "bold"), ("dict", "reverse")]
    assert text.plain == f"Notes: {hit.snippet}"


def test_matches_are_highlighted_as_spans_whatever_the_case(tmp_path: Path) -> None:
    store, _ = _store(tmp_path, "Penguins live in the south.\nPENGUINS swim; a penguin dives.")
    hit = store.search("penguin")[0]
    assert _marked(hit) == ["Penguin", "PENGUIN", "penguin"]
    assert "\n" not in hit.snippet  # one line in the result list
    text = hit_text(hit)
    assert [text.plain[s.start:s.end] for s in text.spans if str(s.style) == "reverse"] == _marked(hit)


def test_a_long_message_gives_a_snippet_around_the_match(tmp_path: Path) -> None:
    store, _ = _store(tmp_path, "lorem ipsum " * 200 + "the needle is here " + "dolor sit " * 200)
    hit = store.search("needle")[0]
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…") and len(hit.snippet) < 100
    assert _marked(hit) == ["needle"]


def test_the_old_index_is_carried_over_by_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    migrate(conn, MIGRATIONS[:2])  # the schema before trigram search and the 'truncated' status
    with conn:
        conn.execute("INSERT INTO conversations (title, created_at, updated_at) VALUES ('旧的', 0, 0)")
        for text, stats in ((CHINESE, None), ("ancient words", None),
                            ("cut short", json.dumps({"stop_reason": "length"})), ("fine", "not json")):
            conn.execute("INSERT INTO messages (conversation_id, role, content, stats, created_at, updated_at) "
                         "VALUES (1, 'assistant', ?, ?, 0, 0)", (text, stats))
    assert conn.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH '机器学习'").fetchall() == []
    conn.close()

    store = ConversationStore(path)
    assert [h.message_id for h in store.search("机器学习")] == [1]
    assert [h.message_id for h in store.search("ancient")] == [2]
    assert [m.status for m in store.messages(1)] == ["complete", "complete", "truncated", "complete"]
    # the triggers work on the rebuilt table: edits and deletes reach the index
    store.update_message(2, content="modern words", thinking="", status="complete")
    assert store.search("ancient") == [] and [h.message_id for h in store.search("modern")] == [2]
    store.delete_message(1)
    assert store.search("机器学习") == []
    new = store.add_message(1, "assistant", "深度学习很有趣")
    assert [h.message_id for h in store.search("深度学习")] == [new]
    assert store.conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')") is not None


def test_short_words_outside_ascii_are_found_whatever_the_case(tmp_path: Path) -> None:
    """SQLite's LIKE folds only ASCII letters: 'öl' missed 'Öl' and 'ΣΟ' missed 'σο' (the trigram path folds all)."""
    store, (de, el, _) = _store(tmp_path, "Ärger über Öl", "ΣΟΦΙΑ και σοφία", "plain text")
    for query in ("öl", "ÖL", "Öl", "ü", "Ü", "äR öL"):
        hits = store.search(query)
        assert [h.message_id for h in hits] == [de], query
    hits = store.search("σο")
    assert [h.message_id for h in hits] == [el] and _marked(hits[0]) == ["ΣΟ", "σο"]
    assert [h.message_id for h in store.search("Ди")] == []  # still needs the text to be there
    assert [h.message_id for h in store.search("ab%")] == []  # LIKE's wildcards stay literal
