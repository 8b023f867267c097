"""The default solver: every request of a model as a parallel sequence of the batched engine (`localr1 batch`'s).

Each sequence has its own sampler seeded by its request, so an answer does not depend on which others ran beside it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from localr1.engine.params import LoadParams
from localr1.engine.template import ChatMessage
from localr1.engine.thinking import ThinkingControl
from localr1.errors import ConfigError, ContextOverflowError, TemplateError
from quantize.quality.tasks.solver import (
    Solution,
    Solver,
    SolveRequest,
    SolveSettings,
    failed,
    reply_limit,
    solution_from,
)


def _key(request: SolveRequest) -> str:
    return f"{request.problem}/{request.sample}"


class BatchSolver:
    """One BatchEngine with `settings.parallel` sequence slots of `settings.context` tokens each."""

    def __init__(self, path: Path, settings: SolveSettings) -> None:
        from localr1.engine.batch import BatchEngine

        self.settings = settings
        self.controls: ThinkingControl = settings.thinking
        self.engine = BatchEngine(path, LoadParams(context_size=settings.context, threads=settings.threads),
                                  settings.sampling, settings.parallel)

    def solve(self, requests: Sequence[SolveRequest]) -> Iterator[Solution]:
        """Answer the requests, `parallel` at a time, each as it finishes (a question over the context fails alone)."""
        from localr1.engine.batch import SequenceFinished, SequenceRequest

        sampling = reply_limit(self.settings.sampling, self.settings.thinking)
        by_key: dict[str, SolveRequest] = {}
        sequences: list[SequenceRequest] = []
        for request in requests:
            try:
                prepared = self.engine.prepare([ChatMessage("user", request.prompt)])
            except (ContextOverflowError, TemplateError, ConfigError) as exc:
                yield failed(request, str(exc))
                continue
            by_key[_key(request)] = request
            sequences.append(SequenceRequest(_key(request), prepared, replace(sampling, seed=request.seed),
                                             self.controls))
        for key, event in self.engine.run(sequences):
            if not isinstance(event, SequenceFinished):
                continue
            request = by_key[key]
            seconds = event.stats.time_to_first_token_s + event.stats.decode_s
            yield solution_from(request, event, seconds, thinking_closed=event.thinking_forced_closed,
                                parallel=event.peak_batch)

    def close(self) -> None:
        """Free the context and the model."""
        self.engine.close()


def batch_solver(path: Path, settings: SolveSettings) -> Solver:
    """The default SolverFactory: every request as a parallel sequence of the batched engine."""
    return BatchSolver(path, settings)
