"""Cancel while llama.cpp reads a long prompt: it stops within a batch and the cache stays right."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import llama_cpp
import pytest

from localr1.engine import ChatMessage, Finished, LoadParams
from localr1.engine.engine import Engine
from tests.conftest import GREEDY

pytestmark = pytest.mark.model

PARAMS = LoadParams(context_size=2048, batch_size=256, seed=1)
LONG = [ChatMessage("user", "Summarise this text. " + "The quick brown fox jumps over the lazy dog. " * 130)]
SAMPLING = replace(GREEDY, max_tokens=8)


@pytest.fixture(scope="module")
def eng(demo_path: Path) -> Iterator[Engine]:
    engine = Engine(demo_path, PARAMS, SAMPLING)
    yield engine
    engine.close()


def cancel_after_first_batch(engine: Engine) -> Finished:
    """Start a chat on the long prompt, cancel once llama.cpp has stored its first batch."""
    finals: list[Finished] = []

    def consume() -> None:
        finals.extend(e for e in engine.chat(LONG) if isinstance(e, Finished))

    engine.reset_cache()
    worker = threading.Thread(target=consume)
    worker.start()
    deadline = time.monotonic() + 120
    while engine._llm.n_tokens == 0 and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.002)
    engine.cancel()
    worker.join(120)
    assert finals, "no Finished event"
    return finals[0]


def kv_positions(engine: Engine) -> int:
    """Positions llama.cpp holds in its cache for sequence 0."""
    memory = llama_cpp.llama_get_memory(engine._llm._ctx.ctx)
    return int(llama_cpp.llama_memory_seq_pos_max(memory, 0)) + 1


def test_cancel_stops_prompt_reading_as_a_normal_stop(eng: Engine) -> None:
    prompt_tokens = len(eng.tokenize_prompt(eng.render(LONG)))
    assert prompt_tokens > 4 * PARAMS.batch_size
    final = cancel_after_first_batch(eng)
    assert final.stats.stop_reason == "cancelled" and final.error is None
    assert final.stats.generated_tokens == 0 and final.answer == ""
    # Stopped inside the prompt: at most the batch under way finished after the request.
    assert PARAMS.batch_size <= final.stats.prompt_eval_tokens <= 2 * PARAMS.batch_size
    assert final.stats.prompt_eval_tokens < prompt_tokens - PARAMS.batch_size
    # llama.cpp dropped the aborted batch; the bookkeeping agrees with its cache.
    assert kv_positions(eng) == eng._llm.n_tokens == final.stats.prompt_eval_tokens


def test_turn_after_a_cancelled_prompt_matches_a_fresh_engine(eng: Engine, demo_path: Path) -> None:
    cancelled = cancel_after_first_batch(eng)
    kept = cancelled.stats.prompt_eval_tokens
    assert cancelled.stats.stop_reason == "cancelled" and kept < cancelled.stats.prompt_tokens
    events = list(eng.chat(LONG))
    after = events[-1]
    assert isinstance(after, Finished) and after.stats.stop_reason in ("eos", "length")
    assert after.stats.cached_tokens == kept  # the prefix read before the cancel is reused
    assert after.stats.prompt_eval_tokens == after.stats.prompt_tokens - kept
    fresh = Engine(demo_path, PARAMS, SAMPLING)
    try:
        expected = list(fresh.chat(LONG))[-1]
    finally:
        fresh.close()
    assert isinstance(expected, Finished)
    assert after.answer == expected.answer and after.answer


def test_a_later_short_turn_is_not_aborted(eng: Engine) -> None:
    cancel_after_first_batch(eng)
    final = list(eng.chat([ChatMessage("user", "Say hello.")]))[-1]
    assert isinstance(final, Finished)
    assert final.stats.stop_reason in ("eos", "length") and final.answer
