"""A heavy user's history in real SQLite, written in bulk: long R1-style answers, many conversations.

Shared by the scale tests and benchmarks/tui_scale.py. Every message carries a unique marker
(`q0037`, `a0037`) so a test can find it on screen or with search.
"""

from __future__ import annotations

import time

from localr1.store import ConversationStore
from localr1.store.db import transaction

WORDS = ("the", "sum", "of", "two", "numbers", "is", "even", "when", "both", "are", "odd", "so", "we", "check",
         "each", "case", "carefully", "and", "then", "compute", "result", "with", "`n % 2`", "**parity**")


def prose(words: int, seed: int) -> str:
    """`words` words of prose with a sentence break every 12."""
    return "".join(WORDS[(seed + i * 7) % len(WORDS)] + (". " if i % 12 == 11 else " ") for i in range(words))


def user_text(i: int) -> str:
    """A question of about 30 words."""
    return f"Question q{i:04d}: {prose(30, i)}"


def thinking_text(i: int) -> str:
    """Reasoning of about 150 words in two paragraphs."""
    return f"Thinking t{i:04d}. {prose(75, i)}\n\n{prose(75, i + 3)}"


def answer_text(i: int) -> str:
    """An answer of about 200 words: a paragraph, a list, a code block and a closing paragraph."""
    code = "\n".join(f"    total += compute(n, {k})" for k in range(6))
    return (f"Answer a{i:04d}. {prose(80, i)}\n\n- {prose(10, i + 1)}\n- {prose(10, i + 2)}\n- {prose(10, i + 3)}\n\n"
            f"```python\ndef solve(n):\n    total = 0\n{code}\n    return total\n```\n\n{prose(60, i + 4)}")


def add_conversation(store: ConversationStore, messages: int, *, title: str = "Long conversation",
                     at: float | None = None, long: bool = True) -> int:
    """One conversation of `messages` alternating user and assistant messages; returns its id."""
    now = time.time() if at is None else at
    with transaction(store.conn) as conn:
        cur = conn.execute("INSERT INTO conversations (title, model, created_at, updated_at) VALUES (?, ?, ?, ?)",
                           (title, "demo", now, now))
        conversation_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO messages (conversation_id, role, content, thinking, status, model, stats, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, 'complete', 'demo', ?, ?, ?)",
            [_row(conversation_id, i, long, now) for i in range(messages)],
        )
    return conversation_id


def _row(conversation_id: int, i: int, long: bool, now: float) -> tuple[object, ...]:
    if i % 2 == 0:
        return conversation_id, "user", user_text(i) if long else f"Question q{i:04d}", "", None, now, now
    stats = '{"generated_tokens": 420, "decode_tokens_per_s": 7.5, "time_to_first_token_s": 0.8}'
    if long:
        return conversation_id, "assistant", answer_text(i), thinking_text(i), stats, now, now
    return conversation_id, "assistant", f"Answer a{i:04d}.", "", stats, now, now


def add_history(store: ConversationStore, conversations: int, *, messages_each: int = 2) -> list[int]:
    """`conversations` short conversations, the last one the most recent; returns their ids oldest first."""
    start = time.time() - conversations
    ids: list[int] = []
    with transaction(store.conn) as conn:
        for c in range(conversations):
            at = start + c
            cur = conn.execute("INSERT INTO conversations (title, model, created_at, updated_at) VALUES (?, ?, ?, ?)",
                               (f"Conversation c{c:05d}", "demo", at, at))
            conversation_id = int(cur.lastrowid or 0)
            ids.append(conversation_id)
            conn.executemany(
                "INSERT INTO messages (conversation_id, role, content, thinking, status, model, stats, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, 'complete', 'demo', ?, ?, ?)",
                [_row(conversation_id, i, False, at) for i in range(messages_each)],
            )
    return ids
