"""The batched engine against one hostile request: it ends alone, the other sequences in the batch go on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from localr1.engine import ChatMessage, LoadParams
from localr1.engine.batch import BatchEngine, SequenceFinished, SequenceRequest
from localr1.engine.thinking import ThinkingControl
from localr1.errors import ConfigError, ContextOverflowError
from tests.conftest import GREEDY

pytestmark = pytest.mark.model
SHORT = replace(GREEDY, max_tokens=12)


@pytest.fixture(scope="module")
def r1_small(r1_demo_path: Path) -> Iterator[BatchEngine]:
    """The R1 template (the prompt opens the thinking), two slots of 256 tokens."""
    eng = BatchEngine(r1_demo_path, LoadParams(context_size=256, seed=1), SHORT, parallel=2)
    yield eng
    eng.close()


def _longest_prompt(engine: BatchEngine) -> list[ChatMessage]:
    """A conversation that just fits a slot (the last one before ContextOverflowError)."""
    best: list[ChatMessage] = []
    for n in range(150, 400):
        messages = [ChatMessage("user", "apple " * n)]
        try:
            engine.prepare(messages)
        except ContextOverflowError:
            return best
        best = messages
    raise AssertionError("no prompt filled the slot")


def test_a_zero_budget_at_the_edge_of_the_context_ends_alone(r1_small: BatchEngine) -> None:
    hostile = r1_small.prepare(_longest_prompt(r1_small))
    assert len(hostile.tokens) >= r1_small.slot_context - 4  # the closing tag no longer fits after it
    victim = r1_small.prepare([ChatMessage("user", "Count to five.")])
    requests = [SequenceRequest("victim", victim, SHORT, ThinkingControl(loop_guard="off")),
                SequenceRequest("hostile", hostile, SHORT, ThinkingControl(budget_tokens=0))]
    done = {rid: e for rid, e in r1_small.run(requests) if isinstance(e, SequenceFinished)}
    assert done["victim"].error is None and done["victim"].stats.stop_reason == "length", done["victim"].error
    assert done["victim"].stats.generated_tokens == SHORT.max_tokens
    assert done["hostile"].error is None and done["hostile"].stats.length_limit == "context"
    assert r1_small.free_slots == 2  # both slots back


def test_an_unpaired_surrogate_is_a_user_error(r1_small: BatchEngine) -> None:
    with pytest.raises(ConfigError, match="invalid character"):
        r1_small.prepare([ChatMessage("user", "hi \ud800 there")])
