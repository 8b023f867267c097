"""The batched engine on the real demo model: batch equals alone, slots freed and reused, cancel, limits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from localr1.engine import AnswerDelta, ChatMessage, Finished, LoadParams, ThinkingDelta
from localr1.engine.batch import BatchEngine, NoFreeSlotError, ReasoningControls, SequenceFinished, SequenceRequest
from localr1.engine.engine import Engine
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
NO_GUARD = ReasoningControls(loop_guard="off")


@pytest.fixture(scope="module")
def batch(demo_path: Path) -> Iterator[BatchEngine]:
    """Four sequence slots of 512 tokens on the demo model."""
    eng = BatchEngine(demo_path, LoadParams(context_size=512, seed=1), SHORT, parallel=4)
    yield eng
    eng.close()


def request(engine: BatchEngine, rid: str, prompt: str, controls: ReasoningControls = NO_GUARD) -> SequenceRequest:
    return SequenceRequest(rid, engine.prepare([ChatMessage("user", prompt)]), SHORT, controls)


def finals(events: Iterator[tuple[str, object]]) -> dict[str, SequenceFinished]:
    out = {}
    for rid, event in events:
        if isinstance(event, SequenceFinished):
            out[rid] = event
    return out


def test_greedy_output_in_a_batch_equals_each_prompt_alone(batch: BatchEngine, demo_path: Path) -> None:
    requests = [request(batch, str(i), p) for i, p in enumerate(PROMPTS)]
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


@pytest.fixture(scope="module")
def r1_batch(r1_demo_path: Path) -> Iterator[BatchEngine]:
    """The demo weights with the R1 template: every prompt opens the thinking."""
    eng = BatchEngine(r1_demo_path, LoadParams(context_size=512, seed=1), SHORT, parallel=2)
    yield eng
    eng.close()


def test_thinking_budget_closes_the_thinking_and_leaves_no_tag(r1_batch: BatchEngine) -> None:
    budget = ReasoningControls(thinking_budget=6, loop_guard="off")
    free = ReasoningControls(loop_guard="off")
    requests = [request(r1_batch, "budget", "Hi", budget), request(r1_batch, "free", "Hi", free)]
    done = finals(r1_batch.run(requests))
    limited, unlimited = done["budget"], done["free"]
    assert unlimited.stats.thinking_cut_off and not unlimited.thinking_forced_closed  # it thinks past 6 tokens
    assert limited.thinking_forced_closed and limited.answer
    assert len(r1_batch.vocab.tokenize(limited.thinking, add_bos=False, special=False)) <= 6
    assert "</think>" not in limited.answer + limited.thinking and "<think>" not in limited.answer


def test_thinking_budget_zero_gives_no_thinking_at_all(r1_batch: BatchEngine) -> None:
    done = finals(r1_batch.run([request(r1_batch, "zero", "Hi", ReasoningControls(thinking_budget=0))]))
    assert done["zero"].thinking == "" and done["zero"].answer and done["zero"].thinking_forced_closed
