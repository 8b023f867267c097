"""Thinking budget, budget 0 and answer-now on the real demo weights with the R1 template (the opener forced)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from localr1.engine import (
    AnswerDelta,
    ChatMessage,
    Event,
    Finished,
    LoadParams,
    ThinkingClosed,
    ThinkingControl,
    ThinkingDelta,
)
from localr1.engine.engine import Engine
from localr1.engine.thinking import GRACE_TOKENS, TRANSITION, ends_sentence, ends_word
from tests.conftest import GREEDY

pytestmark = pytest.mark.model

QUESTION = [ChatMessage("user", "Explain why the sky is blue")]
TRANSITION_WORDS = TRANSITION.strip()


@pytest.fixture(scope="module")
def r1_engine(r1_demo_path: Path) -> Iterator[Engine]:
    """The demo weights under the R1 template: every reply starts inside <think>."""
    eng = Engine(r1_demo_path, LoadParams(context_size=1024, seed=1), replace(GREEDY, max_tokens=80))
    yield eng
    eng.close()


def collect(engine: Engine, control: ThinkingControl, messages: list[ChatMessage] = QUESTION,
            max_tokens: int = 80) -> tuple[list[Event], Finished]:
    events = list(engine.chat(messages, replace(GREEDY, max_tokens=max_tokens), control))
    final = events[-1]
    assert isinstance(final, Finished)
    return events, final


def cache_text(engine: Engine) -> str:
    return engine.vocab.detokenize(engine.cached_tokens, special=True).decode("utf-8", "replace")


def test_without_a_budget_the_demo_thinks_to_the_limit(r1_engine: Engine) -> None:
    """The baseline the budget tests rely on: the demo never closes its thinking by itself."""
    _, final = collect(r1_engine, ThinkingControl(loop_guard="off"), max_tokens=40)
    assert final.stats.thinking_tokens == 40 and final.answer == ""
    assert final.stats.thinking_ended_by is None


def test_a_budget_of_n_tokens_ends_thinking_at_a_boundary_then_answers(r1_engine: Engine) -> None:
    budget = 12
    events, final = collect(r1_engine, ThinkingControl(budget_tokens=budget, loop_guard="off"))
    stats = final.stats
    assert stats.thinking_ended_by == "budget"
    assert budget <= stats.thinking_tokens <= budget + GRACE_TOKENS
    closed = [e for e in events if isinstance(e, ThinkingClosed)]
    assert closed == [ThinkingClosed("budget", stats.thinking_tokens)]
    # Everything thought before the close, nothing after it; then the answer.
    at = events.index(closed[0])
    assert not any(isinstance(e, ThinkingDelta) for e in events[at:])
    assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == final.thinking
    assert final.answer and stats.generated_tokens > stats.thinking_tokens
    # Never mid-word: the thinking ends a sentence or line, or at worst a word.
    assert ends_sentence(final.thinking) or ends_word(final.thinking)
    # The forced text is in the model's context, and in neither text the user sees.
    assert TRANSITION_WORDS in cache_text(r1_engine)
    for text in (final.thinking, final.answer):
        assert TRANSITION_WORDS not in text and "</think>" not in text


def test_a_time_budget_ends_the_thinking(r1_engine: Engine) -> None:
    _, final = collect(r1_engine, ThinkingControl(budget_seconds=0.001, loop_guard="off"))
    assert final.stats.thinking_ended_by == "budget"
    assert 1 <= final.stats.thinking_tokens <= 1 + GRACE_TOKENS
    assert final.answer


def test_budget_zero_gives_no_thinking_at_all(r1_engine: Engine) -> None:
    events, final = collect(r1_engine, ThinkingControl(budget_tokens=0, loop_guard="off"), max_tokens=24)
    assert final.thinking == ""
    assert not any(isinstance(e, ThinkingDelta) for e in events)
    assert final.stats.thinking_tokens == 0 and final.stats.thinking_ended_by == "budget"
    assert final.answer
    assert "<think>\n\n</think>\n\n" in cache_text(r1_engine)
    assert "</think>" not in final.answer and TRANSITION_WORDS not in cache_text(r1_engine)


def test_answer_now_from_another_thread_ends_thinking_within_one_token(r1_engine: Engine) -> None:
    stream = r1_engine.chat(QUESTION, replace(GREEDY, max_tokens=80), ThinkingControl(loop_guard="off"))
    before: list[str] = []
    after: list[Event] = []
    for event in stream:
        assert isinstance(event, ThinkingDelta)
        before.append(event.text)
        if len(before) == 6:
            caller = threading.Thread(target=r1_engine.answer_now)
            caller.start()
            caller.join()
            break
    after = list(stream)
    final = after[-1]
    assert isinstance(final, Finished)
    # The very next event is the close: not one more token of thinking.
    assert isinstance(after[0], ThinkingClosed) and after[0].reason == "answer_now"
    assert after[0].thinking_tokens == final.stats.thinking_tokens >= len(before)
    assert final.thinking == "".join(before)
    assert final.stats.thinking_ended_by == "answer_now"
    assert final.answer and TRANSITION_WORDS not in final.answer
    assert any(isinstance(e, AnswerDelta) for e in after)


def test_answer_now_is_inert_for_a_model_that_does_not_think(engine: Engine) -> None:
    engine.answer_now()  # before the call: forgotten when the reply starts
    events = list(engine.chat([ChatMessage("user", "Say hello.")], replace(GREEDY, max_tokens=12)))
    final = events[-1]
    assert isinstance(final, Finished)
    assert final.thinking == "" and final.answer
    assert final.stats.thinking_ended_by is None and final.stats.thinking_tokens == 0
    assert not any(isinstance(e, ThinkingClosed) for e in events)


def test_later_turns_never_carry_the_forced_text(r1_engine: Engine) -> None:
    _, first = collect(r1_engine, ThinkingControl(budget_tokens=8, loop_guard="off"), max_tokens=40)
    assert first.stats.thinking_ended_by == "budget"
    assert TRANSITION_WORDS in cache_text(r1_engine)
    follow_up = [*QUESTION, ChatMessage("assistant", first.answer, thinking=first.thinking),
                 ChatMessage("user", "Say it shorter.")]
    assert TRANSITION_WORDS not in r1_engine.render(follow_up).text
    _, second = collect(r1_engine, ThinkingControl(budget_tokens=0, loop_guard="off"), follow_up, max_tokens=8)
    assert second.stats.stop_reason in ("eos", "length")
    assert TRANSITION_WORDS not in cache_text(r1_engine)
