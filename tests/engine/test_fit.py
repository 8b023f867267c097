"""Trimming a full conversation at stable points, so later turns reuse the KV cache."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localr1.engine import ChatMessage, ContextTrimmed, Finished, LoadParams
from localr1.engine.engine import Engine
from localr1.engine.fit import cut_points
from localr1.engine.template import Role
from tests.conftest import GREEDY

TURNS = 22
FRUIT_LETTERS = "ABCDEFGKLMNOPRSTBCDGLMP"
ASK = (
    "Please answer in a few words only, without repeating the question and without any explanation. "
    "Name one fruit whose name starts with the letter"
)


def alternating(n: int) -> list[Role]:
    return ["user" if i % 2 == 0 else "assistant" for i in range(n)]


def test_cut_points_one_per_block_at_user_turns() -> None:
    costs = [50] * 12
    assert cut_points(costs, alternating(12), block=100) == [2, 4, 6, 8, 10]
    assert cut_points(costs, alternating(12), block=220) == [6, 10]


def test_the_last_user_message_is_always_a_point() -> None:
    assert cut_points([10, 10, 10], alternating(3), block=1000) == [2]
    assert cut_points([10], ["user"], block=5) == []


@given(
    st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=16, max_value=1000),
)
def test_points_do_not_move_when_the_conversation_grows(costs: list[int], extra: int, block: int) -> None:
    roles = alternating(len(costs))
    grown_costs = costs + [37] * extra
    before = cut_points(costs, roles, block)
    grown = cut_points(grown_costs, alternating(len(grown_costs)), block)
    assert all(roles[p] == "user" for p in before) and before == sorted(set(before))
    # Up to the shorter conversation's last user message (its last resort), the points are the same.
    last_user = max(i for i, role in enumerate(roles) if role == "user")
    assert [p for p in grown if p < last_user] == [p for p in before if p < last_user]


@pytest.mark.model
def test_a_long_conversation_reuses_the_cache_turn_after_turn(demo_path: Path) -> None:
    eng = Engine(demo_path, LoadParams(context_size=512, seed=1), replace(GREEDY, max_tokens=24))
    history: list[ChatMessage] = []
    turns = []
    try:
        for i in range(TURNS):
            history.append(ChatMessage("user", f"Question {i}: {ASK} {FRUIT_LETTERS[i]}?"))
            events = list(eng.chat(history))
            final = events[-1]
            assert isinstance(final, Finished) and final.error is None
            trimmed = [e for e in events if isinstance(e, ContextTrimmed)]
            turns.append((final.stats, trimmed[0].dropped_messages if trimmed else 0))
            history.append(ChatMessage("assistant", final.answer))
    finally:
        eng.close()
    first_trim = next(i for i, (_, dropped) in enumerate(turns) if dropped)
    later = turns[first_trim + 1:]
    assert len(later) >= 6
    # A turn reuses the cache when everything the previous turn read is still a prefix of its prompt.
    reused = [
        i for i in range(first_trim + 1, len(turns))
        if turns[i][0].cached_tokens >= turns[i - 1][0].prompt_tokens
    ]
    assert len(reused) >= 0.6 * len(later), [(s.prompt_tokens, s.cached_tokens, d) for s, d in turns]
    # And the cut moves rarely: a whole block at once, not one exchange per turn.
    cuts = [dropped for _, dropped in turns[first_trim:]]
    assert len(set(cuts)) <= 1 + len(later) // 3
    for stats, _ in turns:
        assert stats.prompt_tokens + 24 <= 512
