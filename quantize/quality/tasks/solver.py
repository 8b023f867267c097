"""How problems reach a model: a small `Solver` interface, the request and reply types, and the sequential engine.

The evaluation asks a solver for answers to a list of prompts and takes them in any order, as each finishes:
`batch_solver.BatchSolver` (the default) runs them as parallel sequences of one llama.cpp context, and
`SequentialSolver` one after another through the single-sequence engine (the reference the batch is checked by).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from localr1.engine.events import Finished
from localr1.engine.params import LoadParams, SamplingParams
from localr1.engine.template import ChatMessage
from localr1.engine.thinking import GRACE_TOKENS, ThinkingControl
from localr1.errors import LocalR1Error
from localr1.presets import apply_preset

ANSWER_TOKENS = 1024  # room left for the answer after a thinking budget in tokens


def math_prompt(question: str) -> str:
    """The user turn for one problem with the math preset (as `run --preset math` builds it)."""
    return apply_preset(question, "math")


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
    stop: str  # the engine's stop reason
    thinking_cut_off: bool  # a length limit ended the reply while it was still thinking
    error: str | None = None
    thinking_closed: bool = False  # the thinking budget or the loop guard ended the thinking (the model answered)
    parallel: int = 1  # most sequences decoded together with this one


@dataclass(frozen=True)
class SolveSettings:
    """How every request is generated: sampling, reasoning controls, context per sequence, threads, sequences."""

    sampling: SamplingParams
    thinking: ThinkingControl
    context: int
    threads: int = 0
    parallel: int = 1


class Solver(Protocol):
    """A loaded model that answers requests (in any order) and is closed when done."""

    def solve(self, requests: Sequence[SolveRequest]) -> Iterator[Solution]:
        """Yield one Solution per request as each finishes."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


SolverFactory = Callable[[Path, SolveSettings], Solver]


def reply_limit(sampling: SamplingParams, thinking: ThinkingControl) -> SamplingParams:
    """Sampling with the reply's length capped when a token budget bounds the thinking: the budget, the grace
    spent reaching a boundary, and room for the answer."""
    if thinking.budget_tokens is None:
        return sampling
    return replace(sampling, max_tokens=min(sampling.max_tokens,
                                            thinking.budget_tokens + GRACE_TOKENS + ANSWER_TOKENS))


def solution_from(request: SolveRequest, final: Finished, seconds: float, *, thinking_closed: bool,
                  parallel: int = 1) -> Solution:
    """A Solution from an engine's final event (the thinking tokens as generated: the text tokenized again may
    count fewer, "\n" "\n" becoming "\n\n")."""
    stats = final.stats
    return Solution(request, final.thinking, final.answer, stats.thinking_tokens, stats.generated_tokens, seconds,
                    stats.stop_reason, stats.thinking_cut_off, final.error, thinking_closed, parallel)


def failed(request: SolveRequest, error: str) -> Solution:
    """A request that got no reply (not kept: a re-run asks again)."""
    return Solution(request, "", "", 0, 0, 0.0, "error", False, error)


class SequentialSolver:
    """The single-sequence engine, one request after another; the cache is emptied before each, so every answer is
    reproducible on its own (a re-run after an interruption gives the answers an uninterrupted run would have)."""

    def __init__(self, path: Path, settings: SolveSettings) -> None:
        from localr1.engine.engine import Engine

        self.settings = settings
        self.engine = Engine(path, LoadParams(context_size=settings.context, threads=settings.threads),
                             settings.sampling)

    def solve(self, requests: Sequence[SolveRequest]) -> Iterator[Solution]:
        """Answer the requests in order."""
        sampling = reply_limit(self.settings.sampling, self.settings.thinking)
        for request in requests:
            self.engine.reset_cache()
            started = time.perf_counter()
            try:
                events = list(self.engine.chat([ChatMessage("user", request.prompt)],
                                               replace(sampling, seed=request.seed), self.settings.thinking))
            except LocalR1Error as exc:  # a question over the context: this one fails, the others go on
                yield failed(request, str(exc))
                continue
            final = events[-1] if events else None
            if not isinstance(final, Finished):  # the engine always ends with Finished
                yield failed(request, "the engine ended without a reply")
                continue
            closed = final.stats.thinking_ended_by in ("budget", "loop")
            yield solution_from(request, final, time.perf_counter() - started, thinking_closed=closed)

    def close(self) -> None:
        """Free the model."""
        self.engine.close()


def sequential_solver(path: Path, settings: SolveSettings) -> Solver:
    """A SolverFactory: the single-sequence engine."""
    return SequentialSolver(path, settings)
