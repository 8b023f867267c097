"""The solvers on the real engine: batch against sequential, the thinking budget as the engine's, seeds, context."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from localr1.engine.params import SamplingParams
from localr1.engine.thinking import GRACE_TOKENS, ThinkingControl
from localr1.presets import PRESETS
from quantize.quality.evaluate import EvalOptions
from quantize.quality.tasks.answers import extract
from quantize.quality.tasks.batch_solver import BatchSolver, batch_solver
from quantize.quality.tasks.evaluate import PROMPT_ROOM, solve_settings
from quantize.quality.tasks.solver import (
    ANSWER_TOKENS,
    SequentialSolver,
    Solution,
    Solver,
    SolveRequest,
    SolveSettings,
    math_prompt,
)

pytestmark = pytest.mark.model

GREEDY = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=32)
QUESTIONS = ["What is 7 + 5?", "What is 100 + 200?", "What is 3 + 4?"]


def _requests(seeds: tuple[int, ...] = (1, 1, 1)) -> list[SolveRequest]:
    return [SolveRequest(f"{i:08x}", 0, math_prompt(q), seed) for i, (q, seed) in enumerate(zip(QUESTIONS, seeds,
                                                                                                  strict=True))]


def _solve(solver: Solver, requests: list[SolveRequest]) -> dict[str, Solution]:
    try:
        return {s.request.problem: s for s in solver.solve(requests)}
    finally:
        solver.close()


def test_math_preset_is_the_one_run_uses() -> None:
    assert math_prompt("What is 2 + 3?") == "What is 2 + 3?\n\n" + PRESETS["math"]


def test_greedy_answers_through_the_batch_equal_the_sequential_engine(demo_path: Path) -> None:
    settings = SolveSettings(GREEDY, ThinkingControl(), context=512, threads=1)
    alone = _solve(SequentialSolver(demo_path, settings), _requests())
    one = _solve(batch_solver(demo_path, settings), _requests())  # the batch engine, one sequence at a time
    together = _solve(batch_solver(demo_path, replace(settings, parallel=3)), _requests())
    # Batched decode is not bit-for-bit the same arithmetic as one sequence alone: at a near-tie (two tokens within
    # a few hundredths of a logit) a longer greedy reply can part ways; these short ones have none.
    for key, reference in alone.items():
        for batched in (one[key], together[key]):
            assert (batched.thinking, batched.answer, batched.tokens, batched.stop) == \
                (reference.thinking, reference.answer, reference.tokens, reference.stop)
        assert one[key].parallel == 1 and reference.parallel == 1
    assert max(s.parallel for s in together.values()) == 3  # the three really shared decode steps


@pytest.mark.parametrize("batched", [True, False], ids=["batch", "sequential"])
def test_a_think_budget_ends_the_thinking_and_the_model_still_answers(r1_demo_path: Path, batched: bool) -> None:
    # The demo with the R1 template starts inside <think> and does not close it itself; the loop guard is off so
    # that only the budget can end the thinking.
    settings = SolveSettings(replace(GREEDY, max_tokens=48), ThinkingControl(budget_tokens=8, loop_guard="off"),
                             context=512, threads=1, parallel=3)
    solver: Solver = BatchSolver(r1_demo_path, settings) if batched \
        else SequentialSolver(r1_demo_path, settings)
    solutions = _solve(solver, _requests())
    for solution in solutions.values():
        assert solution.thinking_closed and not solution.thinking_cut_off and solution.error is None
        assert 8 <= solution.thinking_tokens <= 8 + GRACE_TOKENS + 2  # at or past the budget, to a boundary
        assert "</think>" not in solution.answer[:12] and solution.answer.strip()
    # answers to grade, not replies cut off (which answers hold a number depends on the greedy text, so on the CPU)
    assert any(extract(solution.answer, "number") is not None for solution in solutions.values())


def test_a_time_budget_of_zero_answers_directly(r1_demo_path: Path) -> None:
    settings = SolveSettings(replace(GREEDY, max_tokens=24), ThinkingControl(budget_seconds=0.0), context=512,
                             threads=1, parallel=2)
    solver = batch_solver(r1_demo_path, settings)
    assert isinstance(solver, BatchSolver)  # a budget in seconds runs batched too
    solutions = _solve(solver, _requests()[:2])
    assert all(s.thinking == "" and s.thinking_tokens == 0 and s.answer.strip() for s in solutions.values())


def test_samples_are_reproducible_by_seed_in_a_batch(demo_path: Path) -> None:
    sampled = SamplingParams(temperature=0.9, top_p=0.95, max_tokens=16)
    settings = SolveSettings(sampled, ThinkingControl(), context=256, threads=1, parallel=3)
    same = [replace(r, prompt=math_prompt(QUESTIONS[0])) for r in _requests((11, 12, 11))]
    first = _solve(batch_solver(demo_path, settings), same)
    again = _solve(batch_solver(demo_path, settings), same)
    answers = [first[r.problem].answer for r in same]
    assert answers[0] == answers[2] != ""  # the same seed, the same draw, beside other sequences
    assert [again[r.problem].answer for r in same] == answers
    assert all(s.thinking == "" and s.thinking_tokens == 0 and s.error is None for s in first.values())


def test_a_question_over_the_context_fails_alone(demo_path: Path) -> None:
    settings = SolveSettings(replace(GREEDY, max_tokens=8), ThinkingControl(), context=64, threads=1, parallel=2)
    long = SolveRequest("long", 0, math_prompt("Add these: " + " + ".join(["1"] * 200)), 1)
    solutions = _solve(batch_solver(demo_path, settings), [long, _requests()[0]])
    assert solutions["long"].error is not None and "context" in solutions["long"].error
    assert solutions["00000000"].error is None and solutions["00000000"].tokens > 0


def test_context_holds_the_longest_reply(demo_path: Path) -> None:
    plain = solve_settings(demo_path, EvalOptions(max_tokens=3000))
    assert plain.context == 3000 + PROMPT_ROOM and plain.sampling.max_tokens == 3000 and plain.parallel == 4
    budget = solve_settings(demo_path, EvalOptions(max_tokens=3000, thinking=ThinkingControl(budget_tokens=100)))
    assert budget.context == 100 + GRACE_TOKENS + ANSWER_TOKENS + PROMPT_ROOM
    assert budget.thinking == ThinkingControl(budget_tokens=100)
    assert solve_settings(demo_path, EvalOptions(max_tokens=100_000)).context == 8192  # the demo's limit
    assert solve_settings(demo_path, EvalOptions(context=999)).context == 999
    recommended = solve_settings(demo_path, EvalOptions()).sampling  # a file outside models.toml: generic defaults
    assert recommended.temperature > 0 and recommended.top_p < 1
