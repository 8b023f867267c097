"""The engine on the real demo model: determinism, stats, cancel, overflow, KV reuse."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import llama_cpp
import pytest

from localr1.engine import AnswerDelta, ChatMessage, ContextTrimmed, Event, Finished, LoadParams, ThinkingDelta
from localr1.engine.engine import Engine
from localr1.errors import ConfigError, ContextOverflowError
from tests.conftest import GREEDY

pytestmark = pytest.mark.model  # every test here runs the demo model

QUESTION = [ChatMessage("user", "Name three colours of the rainbow.")]


def run(engine: Engine, messages: list[ChatMessage], **sampling: Any) -> tuple[list[Event], Finished]:
    events = list(engine.chat(messages, replace(GREEDY, **sampling) if sampling else None))
    final = events[-1]
    assert isinstance(final, Finished)
    return events, final


def test_load_parameters_are_explicit_and_exposed(engine: Engine) -> None:
    params = engine.load_params
    assert params.context_size == engine.context_size == 1024
    assert params.threads >= 1 and params.batch_threads == params.threads
    assert engine.describe()["load"]["kv_cache_type"] == "f16"


def test_greedy_output_is_stable_across_runs(demo_path: Path) -> None:
    answers = []
    for _ in range(2):
        eng = Engine(demo_path, LoadParams(context_size=512, seed=7), GREEDY)
        answers.append(run(eng, QUESTION)[1].answer)
        eng.close()
    assert answers[0] and answers[0] == answers[1]


def test_stats_match_the_tokens(engine: Engine) -> None:
    events, final = run(engine, QUESTION, max_tokens=12)
    stats = final.stats
    deltas = [e for e in events if isinstance(e, AnswerDelta | ThinkingDelta)]
    prompt = engine.tokenize_prompt(engine.render(QUESTION))
    assert stats.prompt_tokens == len(prompt)
    assert stats.prompt_eval_tokens + stats.cached_tokens == stats.prompt_tokens
    assert 1 <= stats.generated_tokens <= 12
    assert stats.stop_reason in ("eos", "length")
    if stats.stop_reason == "length":
        assert stats.generated_tokens == 12
    assert "".join(d.text for d in deltas if isinstance(d, AnswerDelta)) == final.answer
    assert stats.time_to_first_token_s > 0 and stats.decode_tokens_per_s > 0
    # Each generated token is one more cached position.
    assert len(engine.cached_tokens) == stats.prompt_tokens + stats.generated_tokens - 1


def test_max_tokens_stops_with_length(engine: Engine) -> None:
    _, final = run(engine, [ChatMessage("user", "Write a long story about a dragon.")], max_tokens=5)
    assert final.stats.stop_reason == "length" and final.stats.generated_tokens == 5


def test_cancel_from_another_thread_keeps_partial_answer(engine: Engine) -> None:
    seen: list[str] = []
    finals: list[Finished] = []
    first = threading.Event()

    def consume() -> None:
        for event in engine.chat([ChatMessage("user", "Write a long story about a dragon.")],
                                 replace(GREEDY, max_tokens=400)):
            if isinstance(event, AnswerDelta):
                seen.append(event.text)
                first.set()
            elif isinstance(event, Finished):
                finals.append(event)

    worker = threading.Thread(target=consume)
    worker.start()
    assert first.wait(30)
    engine.cancel()
    tokens_at_cancel = len(seen)
    worker.join(30)
    final = finals[0]
    assert final.stats.stop_reason == "cancelled"
    assert final.answer == "".join(seen) and final.answer
    # Stops within one token of the request (the one being decoded may still arrive).
    assert final.stats.generated_tokens <= tokens_at_cancel + 2
    assert final.stats.generated_tokens < 400


def test_second_turn_evaluates_only_the_new_tokens(engine: Engine) -> None:
    ctx = engine._llm._ctx.ctx
    _, first = run(engine, QUESTION)
    history = [*QUESTION, ChatMessage("assistant", first.answer), ChatMessage("user", "And three more?")]
    cached = engine.cached_tokens
    prompt2 = engine.tokenize_prompt(engine.render(history))
    shared = next((i for i, (a, b) in enumerate(zip(cached, prompt2, strict=False)) if a != b),
                  min(len(cached), len(prompt2)))
    before = llama_cpp.llama_perf_context(ctx).n_p_eval
    _, second = run(engine, history)
    after = llama_cpp.llama_perf_context(ctx).n_p_eval
    assert shared >= first.stats.prompt_tokens  # the whole first turn is reused
    assert second.stats.prompt_eval_tokens == len(prompt2) - shared
    assert second.stats.cached_tokens == shared
    assert second.stats.prompt_eval_tokens < second.stats.prompt_tokens // 2
    # llama.cpp's own counter agrees (it counts multi-token batches as prompt evaluation).
    assert after - before == second.stats.prompt_eval_tokens


def test_overflow_drops_oldest_turns_and_keeps_latest(demo_path: Path) -> None:
    eng = Engine(demo_path, LoadParams(context_size=256), GREEDY)
    try:
        filler = "The quick brown fox jumps over the lazy dog. " * 6
        history: list[ChatMessage] = [ChatMessage("system", "Be brief.")]
        for i in range(6):
            history += [ChatMessage("user", f"Question {i}: {filler}"), ChatMessage("assistant", f"Answer {i}.")]
        history.append(ChatMessage("user", "Final question: what is 1+1?"))
        events, final = run(eng, history, max_tokens=16)
        trimmed = [e for e in events if isinstance(e, ContextTrimmed)]
        assert len(trimmed) == 1 and trimmed[0].dropped_messages >= 2
        assert trimmed[0].dropped_messages % 2 == 0  # whole question/answer pairs
        prompt = eng.render(history[:1] + history[1 + trimmed[0].dropped_messages:]).text
        assert "Final question: what is 1+1?" in prompt and "Be brief." in prompt
        assert "Question 0:" not in prompt
        assert final.stats.prompt_tokens + 16 <= 256
        assert final.stats.stop_reason in ("eos", "length")
    finally:
        eng.close()


def test_single_message_larger_than_context_is_a_clear_error(demo_path: Path) -> None:
    eng = Engine(demo_path, LoadParams(context_size=256), GREEDY)
    try:
        with pytest.raises(ContextOverflowError, match="context holds 256"):
            list(eng.chat([ChatMessage("user", "word " * 400)]))
    finally:
        eng.close()


def test_quantized_kv_cache_needs_flash_attention(demo_path: Path) -> None:
    with pytest.raises(ConfigError, match="flash attention"):
        Engine(demo_path, LoadParams(kv_cache_type="q8_0"), GREEDY)


def test_quantized_kv_cache_with_flash_attention_runs(demo_path: Path) -> None:
    eng = Engine(demo_path, LoadParams(context_size=256, kv_cache_type="q8_0", flash_attention=True), GREEDY)
    try:
        assert run(eng, QUESTION, max_tokens=4)[1].stats.generated_tokens >= 1
    finally:
        eng.close()
