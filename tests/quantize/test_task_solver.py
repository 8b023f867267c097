"""The sequential solver on the real engine: the math preset, seeds, and the thinking budget as a cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from localr1.engine.params import SamplingParams
from quantize.quality.tasks.answers import grade
from quantize.quality.tasks.evaluate import PROMPT_ROOM, TaskOptions, solve_settings
from quantize.quality.tasks.solver import (
    ANSWER_TOKENS,
    MATH_PRESET,
    SequentialSolver,
    SolveRequest,
    SolveSettings,
    math_prompt,
)

pytestmark = pytest.mark.model

GREEDY = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=40)


def _request(sample: int = 0, seed: int = 1) -> SolveRequest:
    return SolveRequest("p", sample, math_prompt("What is 7 + 5?"), seed)


def test_math_preset_is_folded_into_the_question() -> None:
    assert math_prompt("What is 2 + 3?") == "What is 2 + 3?\n" + MATH_PRESET
    assert "\\boxed{}" in MATH_PRESET


def test_thinking_budget_caps_the_thinking(r1_demo_path: Path) -> None:
    # The demo with the R1 template starts inside <think> and does not close it itself.
    solver = SequentialSolver(r1_demo_path, SolveSettings(GREEDY, think_budget=12, context=512, threads=2))
    try:
        capped = next(iter(solver.solve([_request()])))
        solver.settings = SolveSettings(GREEDY, think_budget=None, context=512, threads=2)
        free = next(iter(solver.solve([_request()])))
    finally:
        solver.close()
    assert capped.stop == "think-budget" and capped.thinking_cut_off and capped.answer == ""
    assert 12 <= capped.tokens <= 13 and 0 < capped.thinking_tokens <= 16
    # Without the budget the reply runs on to the length limit (the engine's loop guard may end the demo's
    # looping thinking on its own first).
    assert free.stop == "length" and free.tokens == 40 and free.thinking_tokens > capped.thinking_tokens
    assert free.thinking.startswith(capped.thinking[:20])  # the same greedy reply, cut earlier
    found, right = grade(capped.answer, "12", "number")
    assert found is None and not right  # no answer: the thinking is never graded


def test_requests_are_answered_in_order_and_reproducibly(demo_path: Path) -> None:
    sampled = SamplingParams(temperature=0.9, top_p=0.95, max_tokens=16)
    solver = SequentialSolver(demo_path, SolveSettings(sampled, think_budget=None, context=256, threads=2))
    try:
        first = list(solver.solve([_request(0, seed=11), _request(1, seed=12), _request(2, seed=11)]))
        again = next(iter(solver.solve([_request(1, seed=12)])))
    finally:
        solver.close()
    assert [s.request.sample for s in first] == [0, 1, 2]
    assert first[0].answer == first[2].answer  # same seed, same answer: the cache is emptied before each
    assert again.answer == first[1].answer
    assert all(s.thinking == "" and s.thinking_tokens == 0 and s.error is None for s in first)


def test_context_holds_the_longest_reply(demo_path: Path) -> None:
    plain = solve_settings(demo_path, TaskOptions(max_tokens=3000))
    assert plain.context == 3000 + PROMPT_ROOM and plain.sampling.max_tokens == 3000
    budget = solve_settings(demo_path, TaskOptions(max_tokens=3000, think_budget=100))
    assert budget.context == 100 + ANSWER_TOKENS + PROMPT_ROOM and budget.think_budget == 100
    assert solve_settings(demo_path, TaskOptions(max_tokens=100_000)).context == 8192  # the demo's limit
    assert solve_settings(demo_path, TaskOptions(context=999)).context == 999
    recommended = solve_settings(demo_path, TaskOptions()).sampling  # a file outside models.toml: generic defaults
    assert recommended.temperature > 0 and recommended.top_p < 1
