"""Full-text search over messages: FTS5 trigram for terms of 3+ characters, LIKE (or casefold) for shorter ones.

Snippets are cut and highlighted here, as plain text plus (start, end) spans, so no character of
the stored text (brackets, markup, control characters) can be taken for a highlight marker.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

TRIGRAM = 3  # the trigram tokenizer matches nothing for a term shorter than this
SNIPPET_CHARS = 80
Spans = tuple[tuple[int, int], ...]
_BLANKS = str.maketrans({c: " " for c in "\n\r\t\v\f"})  # same length: spans stay valid


@dataclass(frozen=True)
class SearchHit:
    """A message that matched: its conversation, an excerpt, and where the terms are in it."""

    conversation_id: int
    conversation_title: str
    message_id: int
    snippet: str
    highlights: Spans = ()


def query_terms(query: str) -> list[str]:
    """The words of a query; double quotes are dropped (they would end an FTS5 phrase)."""
    return [t for t in (w.replace('"', "") for w in query.split()) if t]


def term_pattern(terms: list[str]) -> re.Pattern[str]:
    """Any of the terms, case-insensitively, longest first."""
    return re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)


def make_snippet(text: str, pattern: re.Pattern[str], width: int = SNIPPET_CHARS) -> tuple[str, Spans]:
    """About `width` characters around the first match, on one line, with every match's span."""
    first = pattern.search(text)
    start = max(0, first.start() - width // 4) if first else 0
    end = min(len(text), start + width)
    start = max(0, min(start, end - width))
    prefix, suffix = ("…" if start > 0 else ""), ("…" if end < len(text) else "")
    excerpt = text[start:end].translate(_BLANKS)
    shift = len(prefix)
    spans = tuple((m.start() + shift, m.end() + shift) for m in pattern.finditer(excerpt) if m.end() > m.start())
    return prefix + excerpt + suffix, spans


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains(text: str | None, folded_term: str) -> bool:
    """Whether text holds the (already case-folded) term, whatever the case of either."""
    return text is not None and folded_term in text.casefold()


def search_messages(conn: sqlite3.Connection, query: str, limit: int = 50) -> list[SearchHit]:
    """Messages whose answer or thinking contains every term of the query (case-insensitive)."""
    terms = query_terms(query)
    if not terms:
        return []
    if min(len(t) for t in terms) >= TRIGRAM:
        rows = conn.execute(
            "SELECT m.conversation_id, c.title, m.id, m.content, m.thinking "
            "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            "JOIN conversations c ON c.id = m.conversation_id "
            "WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?",
            (" ".join(f'"{t}"' for t in terms), limit),
        ).fetchall()
    else:
        # LIKE folds the case of ASCII letters only: other terms go through Python's casefold
        conn.create_function("localr1_contains", 2, _contains, deterministic=True)
        where = " AND ".join(
            "(m.content LIKE ? ESCAPE '\\' OR m.thinking LIKE ? ESCAPE '\\')" if t.isascii()
            else "(localr1_contains(m.content, ?) OR localr1_contains(m.thinking, ?))" for t in terms)
        params = [p for t in terms for p in (f"%{_escape_like(t)}%" if t.isascii() else t.casefold(),) * 2]
        rows = conn.execute(
            "SELECT m.conversation_id, c.title, m.id, m.content, m.thinking "
            "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            f"WHERE {where} ORDER BY m.updated_at DESC, m.id DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
    pattern = term_pattern(terms)
    hits: list[SearchHit] = []
    for conversation_id, title, message_id, content, thinking in rows:
        text = content if pattern.search(content) or not pattern.search(thinking) else thinking
        snippet, spans = make_snippet(text, pattern)
        hits.append(SearchHit(conversation_id, title, message_id, snippet, spans))
    return hits
