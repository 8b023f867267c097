"""The batched engine on the real demo model: batch equals alone, slots freed and reused, cancel, limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from localr1.budget import parse_budget
from localr1.engine import (
    AnswerDelta,
    ChatMessage,
    Finished,
    LoadParams,
    SamplingParams,
    ThinkingControl,
    ThinkingDelta,
)
from localr1.engine.batch import BatchEngine, NoFreeSlotError, SequenceFinished, SequenceRequest
from localr1.engine.engine import Engine
from localr1.engine.events import Event, ThinkingClosed
from localr1.engine.thinking import GRACE_TOKENS, TRANSITION, ends_sentence, ends_word
from localr1.errors import ContextOverflowError
from tests.conftest import GREEDY

pytestmark = pytest.mark.model

PROMPTS = [
    "Name three colours of the rainbow.",
    "What is 2+2?",
    "Write a haiku about the sea.",
    "Tell me about Paris.",
    "List five fruits.",
    "Why do cats purr?",
]
SHORT = replace(GREEDY, max_tokens=24)
SKY = "Explain why the sky is blue"  # under the R1 template the demo thinks on without parroting the tags
NO_GUARD = ThinkingControl(loop_guard="off")


@pytest.fixture(scope="module")
def batch(demo_path: Path) -> Iterator[BatchEngine]:
    """Four sequence slots of 512 tokens on the demo model."""
    eng = BatchEngine(demo_path, LoadParams(context_size=512, seed=1), SHORT, parallel=4)
    yield eng
    eng.close()


def request(engine: BatchEngine, rid: str, prompt: str, controls: ThinkingControl = NO_GUARD,
            sampling: SamplingParams = SHORT) -> SequenceRequest:
    return SequenceRequest(rid, engine.prepare([ChatMessage("user", prompt)]), sampling, controls)


def finals(events: Iterator[tuple[str, Event]]) -> dict[str, SequenceFinished]:
    out = {}
    for rid, event in events:
        if isinstance(event, SequenceFinished):
            out[rid] = event
    return out


def test_greedy_output_in_a_batch_equals_each_prompt_alone(batch: BatchEngine, demo_path: Path) -> None:
    requests = [request(batch, str(i), p, ThinkingControl()) for i, p in enumerate(PROMPTS)]
    together = finals(batch.run(requests))
    assert batch.peak_active == 4  # the prompts really shared decode steps
    single = Engine(demo_path, LoadParams(context_size=512, seed=1), SHORT)
    try:
        for i, prompt in enumerate(PROMPTS):
            single.reset_cache()
            alone = list(single.chat([ChatMessage("user", prompt)]))[-1]
            assert isinstance(alone, Finished)
            got = together[str(i)]
            assert (got.thinking, got.answer) == (alone.thinking, alone.answer), prompt
            assert got.stats.generated_tokens == alone.stats.generated_tokens
            assert got.stats.stop_reason == alone.stats.stop_reason
            assert got.peak_batch > 1
    finally:
        single.close()


def test_deltas_add_up_to_the_final_texts(batch: BatchEngine) -> None:
    answers: dict[str, str] = {}
    ends: dict[str, SequenceFinished] = {}
    for rid, event in batch.run([request(batch, "a", PROMPTS[0]), request(batch, "b", PROMPTS[2])]):
        if isinstance(event, AnswerDelta | ThinkingDelta):
            answers[rid] = answers.get(rid, "") + event.text
        elif isinstance(event, SequenceFinished):
            ends[rid] = event
    assert set(ends) == {"a", "b"}
    assert all(answers[rid] == ends[rid].answer != "" for rid in ends)


def test_slots_are_freed_and_reused(batch: BatchEngine) -> None:
    requests = [request(batch, f"r{i}", PROMPTS[i % len(PROMPTS)]) for i in range(9)]
    done = finals(batch.run(requests))
    assert len(done) == 9 and batch.free_slots == 4 and batch.active == 0
    # A freed slot starts empty: the same prompt gives the same answer in any slot, after any other.
    by_prompt: dict[str, set[str]] = {}
    for r in requests:
        by_prompt.setdefault(r.prompt.rendered.text, set()).add(done[r.request_id].answer)
    assert all(len(answers) == 1 for answers in by_prompt.values())


def test_a_full_batch_refuses_another_sequence(batch: BatchEngine) -> None:
    for i in range(4):
        batch.admit(request(batch, f"f{i}", PROMPTS[i]))
    with pytest.raises(NoFreeSlotError):
        batch.admit(request(batch, "extra", PROMPTS[4]))
    for i in range(4):
        batch.cancel(f"f{i}")
    ended = finals(iter(batch.step()))
    assert {e.stats.stop_reason for e in ended.values()} == {"cancelled"} and batch.free_slots == 4


def test_cancel_stops_one_sequence_and_frees_its_slot(batch: BatchEngine) -> None:
    batch.admit(request(batch, "stay", PROMPTS[3]))
    batch.admit(request(batch, "go", PROMPTS[0]))
    for _ in range(4):
        batch.step()
    batch.cancel("go")
    events = batch.step()
    gone = [e for rid, e in events if rid == "go" and isinstance(e, SequenceFinished)]
    assert gone and gone[0].stats.stop_reason == "cancelled" and batch.free_slots == 3
    rest = finals(batch.run([]))
    assert rest["stay"].stats.stop_reason == "length" and rest["stay"].stats.generated_tokens == 24


def test_abort_from_another_thread_ends_every_sequence_and_the_engine_goes_on(batch: BatchEngine) -> None:
    long_prompt = " ".join(f"word{i}" for i in range(110))
    batch.admit(request(batch, "x", long_prompt))
    batch.admit(request(batch, "y", long_prompt + " again"))
    timer = threading.Timer(0.01, batch.abort)
    timer.start()
    ended: dict[str, SequenceFinished] = {}
    while batch.active:
        ended.update(finals(iter(batch.step())))
    timer.join()
    assert set(ended) == {"x", "y"} and batch.free_slots == 4
    assert {e.stats.stop_reason for e in ended.values()} <= {"cancelled", "length"}
    again = finals(batch.run([request(batch, "z", PROMPTS[1])]))
    assert again["z"].stats.stop_reason == "eos" and again["z"].answer


def test_a_prompt_over_a_slots_context_is_refused(batch: BatchEngine) -> None:
    with pytest.raises(ContextOverflowError, match="each sequence's context holds 512"):
        batch.prepare([ChatMessage("user", "word " * 600)])


def test_the_loop_guard_fires_in_a_batch_as_in_run(batch: BatchEngine, demo_path: Path) -> None:
    """The demo loops on this prompt: the batch stops it after the same tokens, with the same answer, as `run`."""
    sampling = replace(GREEDY, max_tokens=400)  # it loops after 210 tokens on this CPU, under 200 on another
    prompt = "Write a long story about a lighthouse keeper and a storm."
    single = Engine(demo_path, LoadParams(context_size=512, seed=1), sampling)
    try:
        alone = list(single.chat([ChatMessage("user", prompt)], thinking=ThinkingControl()))[-1]
    finally:
        single.close()
    assert isinstance(alone, Finished)
    assert alone.stats.stop_reason == "repetition" and alone.stats.loop_detected_after is not None
    mate = request(batch, "mate", PROMPTS[1], ThinkingControl(), sampling)
    got = finals(batch.run([request(batch, "loop", prompt, ThinkingControl(), sampling), mate]))["loop"]
    assert got.stats.stop_reason == "repetition"
    assert got.stats.loop_detected_after == got.loop_detected_at == alone.stats.loop_detected_after
    assert got.stats.generated_tokens == alone.stats.generated_tokens
    assert got.answer == alone.answer and got.peak_batch > 1


@pytest.fixture(scope="module")
def r1_batch(r1_demo_path: Path) -> Iterator[BatchEngine]:
    """The demo weights with the R1 template: every prompt opens the thinking."""
    eng = BatchEngine(r1_demo_path, LoadParams(context_size=512, seed=1), SHORT, parallel=2)
    yield eng
    eng.close()


def events_of(engine: BatchEngine, requests: list[SequenceRequest]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for rid, event in engine.run(requests):
        out.setdefault(rid, []).append(event)
    return out


def final_of(events: list[Event]) -> SequenceFinished:
    assert isinstance(events[-1], SequenceFinished)
    return events[-1]


def assert_clean(engine: BatchEngine, final: Finished) -> None:
    """Neither text holds a thinking tag or the forced transition."""
    for text in (final.thinking, final.answer):
        assert "<think>" not in text and "</think>" not in text and TRANSITION.strip() not in text


def test_a_token_budget_ends_thinking_at_a_boundary_as_run_does(r1_batch: BatchEngine, r1_demo_path: Path) -> None:
    budget = 12
    sampling = replace(GREEDY, max_tokens=80)
    control = ThinkingControl(budget_tokens=budget, loop_guard="off")
    got = events_of(r1_batch, [request(r1_batch, "budget", SKY, control, sampling),
                               request(r1_batch, "free", SKY, NO_GUARD, sampling)])
    limited, unlimited = final_of(got["budget"]), final_of(got["free"])
    assert unlimited.stats.thinking_cut_off and unlimited.stats.thinking_ended_by is None  # it thinks past the budget
    stats = limited.stats
    assert stats.thinking_ended_by == "budget" and limited.thinking_forced_closed
    assert budget <= stats.thinking_tokens <= budget + GRACE_TOKENS
    assert ends_sentence(limited.thinking) or ends_word(limited.thinking)  # never mid-word
    assert limited.answer and stats.generated_tokens > stats.thinking_tokens
    assert_clean(r1_batch, limited)
    closed = [e for e in got["budget"] if isinstance(e, ThinkingClosed)]
    assert closed == [ThinkingClosed("budget", stats.thinking_tokens)]
    assert not any(isinstance(e, ThinkingDelta) for e in got["budget"][got["budget"].index(closed[0]):])
    # The same cut, transition and answer as the single engine (`run`).
    single = Engine(r1_demo_path, LoadParams(context_size=512, seed=1), sampling)
    try:
        alone = list(single.chat([ChatMessage("user", SKY)], thinking=control))[-1]
    finally:
        single.close()
    assert isinstance(alone, Finished)
    assert (limited.thinking, limited.answer) == (alone.thinking, alone.answer)
    assert stats.thinking_tokens == alone.stats.thinking_tokens


def test_budget_zero_in_a_batch_gives_no_thinking_at_all(r1_batch: BatchEngine) -> None:
    got = events_of(r1_batch, [request(r1_batch, "zero", SKY, ThinkingControl(budget_tokens=0)),
                               request(r1_batch, "other", PROMPTS[0], ThinkingControl(budget_tokens=0))])
    for events in got.values():
        final = final_of(events)
        assert final.thinking == "" and not any(isinstance(e, ThinkingDelta) for e in events)
        assert final.answer and final.stats.thinking_tokens == 0 and final.stats.thinking_ended_by == "budget"
        assert_clean(r1_batch, final)
        assert not final.answer.startswith(("\n", " "))


def test_a_time_budget_ends_the_thinking_after_that_long(r1_batch: BatchEngine) -> None:
    tokens, seconds = parse_budget("1s")
    control = ThinkingControl(budget_tokens=tokens, budget_seconds=seconds, loop_guard="off")
    # room for more than a second of thinking even on a quiet machine (the demo decodes ~100 tokens/s alone)
    sampling = replace(GREEDY, max_tokens=400)
    closed_at: float | None = None
    final: SequenceFinished | None = None
    started = time.perf_counter()  # before the sequence is admitted
    for _, event in r1_batch.run([request(r1_batch, "timed", SKY, control, sampling)]):
        if isinstance(event, ThinkingClosed):
            closed_at = time.perf_counter()
        elif isinstance(event, SequenceFinished):
            final = event
    assert final is not None and closed_at is not None
    assert final.stats.thinking_ended_by == "budget" and final.answer
    assert closed_at - (started + final.stats.time_to_first_token_s) >= 1.0  # not before 1 s of thinking
    assert final.stats.thinking_tokens < sampling.max_tokens
    # never mid-word: the cut ends a word, or the model's own next token (greedy, no budget) starts one
    # ("Earth's" cut before " atmosphere" ends a word that the text alone cannot show)
    more = replace(GREEDY, max_tokens=final.stats.thinking_tokens + 4)
    unbudgeted = finals(r1_batch.run([request(r1_batch, "whole", SKY, NO_GUARD, more)]))["whole"].thinking
    assert unbudgeted.startswith(final.thinking) and len(unbudgeted) > len(final.thinking)
    following = unbudgeted[len(final.thinking)]
    assert ends_sentence(final.thinking) or ends_word(final.thinking) or not following.isalnum()
    assert_clean(r1_batch, final)
