"""How problems reach a model: a small `Solver` interface, and the sequential engine behind it.

The evaluation only asks a solver for answers to a list of prompts, in any order, as each finishes; a batched
engine (many sequences in one llama.cpp context) can take the sequential one's place through `SolverFactory`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from localr1.engine.events import Finished, ThinkingDelta
from localr1.engine.params import LoadParams, SamplingParams
from localr1.engine.port import ChatEngine
from localr1.engine.template import ChatMessage

# DeepSeek's usage notes for math with the R1 distills: the instruction goes into the user turn.
MATH_PRESET = "Please reason step by step, and put your final answer within \\boxed{}."
ANSWER_TOKENS = 1024  # room left for the answer after a thinking budget


def math_prompt(question: str) -> str:
    """The user turn for one problem with the math preset."""
    return f"{question}\n{MATH_PRESET}"


@dataclass(frozen=True)
class SolveRequest:
    """One attempt at one problem."""

    problem: str
    sample: int
    prompt: str
    seed: int


@dataclass(frozen=True)
class Solution:
    """What a model replied to one request, and what it cost."""

    request: SolveRequest
    thinking: str
    answer: str
    thinking_tokens: int
    tokens: int
    seconds: float
    stop: str  # the engine's stop reason, or "think-budget"
    thinking_cut_off: bool
    error: str | None = None


@dataclass(frozen=True)
class SolveSettings:
    """How every request is generated."""

    sampling: SamplingParams
    think_budget: int | None
    context: int
    threads: int = 0


class Solver(Protocol):
    """A loaded model that answers requests (in any order) and is closed when done."""

    def solve(self, requests: Sequence[SolveRequest]) -> Iterator[Solution]:
        """Yield one Solution per request as each finishes."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


SolverFactory = Callable[[Path, SolveSettings], Solver]


def budgeted_reply(engine: ChatEngine, request: SolveRequest, sampling: SamplingParams,
                   think_budget: int | None) -> Solution:
    """One reply with a thinking budget, for now as a cap: at most `think_budget` tokens of thinking plus room for
    the answer (`max_tokens`), and a thinking still going at the budget is cut off there (no answer).
    The engine's own budget, which ends the thinking and lets the model answer, takes this function's place."""
    sp = replace(sampling, seed=request.seed)
    if think_budget is not None:
        sp = replace(sp, max_tokens=min(sp.max_tokens, think_budget + ANSWER_TOKENS))
    started = time.perf_counter()
    thinking_pieces = 0
    over_budget = False
    finished: Finished | None = None
    for event in engine.chat([ChatMessage("user", request.prompt)], sp):
        if isinstance(event, ThinkingDelta):
            thinking_pieces += 1
            if think_budget is not None and thinking_pieces >= think_budget and not over_budget:
                over_budget = True
                engine.cancel()  # ends the reply after this token, through the engine's cut-off path
        elif isinstance(event, Finished):
            finished = event
    seconds = time.perf_counter() - started
    if finished is None:  # the engine always ends with Finished; a stream without one is a failed reply
        return Solution(request, "", "", 0, 0, seconds, "error", False, "the engine ended without a reply")
    stats = finished.stats
    thinking_tokens = engine.count_tokens(finished.thinking) if finished.thinking else 0
    if over_budget:
        return Solution(request, finished.thinking, "", thinking_tokens, stats.generated_tokens, seconds,
                        "think-budget", True)
    return Solution(request, finished.thinking, finished.answer, thinking_tokens, stats.generated_tokens, seconds,
                    stats.stop_reason, stats.thinking_cut_off, finished.error)


class SequentialSolver:
    """The engine, one request after another; the cache is emptied before each, so every answer is reproducible
    on its own (a re-run after an interruption gives the answers an uninterrupted run would have)."""

    def __init__(self, path: Path, settings: SolveSettings) -> None:
        from localr1.engine.engine import Engine

        self.settings = settings
        self.engine = Engine(path, LoadParams(context_size=settings.context, threads=settings.threads),
                             settings.sampling)

    def solve(self, requests: Sequence[SolveRequest]) -> Iterator[Solution]:
        """Answer the requests in order."""
        for request in requests:
            self.engine.reset_cache()
            yield budgeted_reply(self.engine, request, self.settings.sampling, self.settings.think_budget)

    def close(self) -> None:
        """Free the model."""
        self.engine.close()


def sequential_solver(path: Path, settings: SolveSettings) -> Solver:
    """The default SolverFactory."""
    return SequentialSolver(path, settings)
