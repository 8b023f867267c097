"""Task accuracy of a ladder: every problem on the base and on every variant, with the math preset.

A model's requests run as parallel sequences of the batched engine (`batch_solver`); answers are kept as each
finishes (`records`), so an interrupted run continues where it stopped; the same seed goes to every model for the
same problem and sample, so the models answer under the same draw.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from localr1.engine.params import SamplingParams, default_threads
from localr1.engine.thinking import format_budget
from localr1.errors import LocalR1Error
from localr1.ggufinfo import read_info
from localr1.loader import sampling_for
from localr1.registry import ResolvedModel
from quantize.errors import EvaluationError
from quantize.ladder.manifest import file_matches, now, resolve_record
from quantize.outlock import locked_dir
from quantize.progress import NullReporter, Reporter
from quantize.quality.evaluate import EvalOptions, ladder_selection, require_ladder
from quantize.quality.tasks.batch_solver import batch_solver
from quantize.quality.tasks.problems import Problem, ProblemSet, load_problems
from quantize.quality.tasks.records import ANSWERS_NAME, AnswerRecord, RecordWriter, read_records
from quantize.quality.tasks.score import ModelAccuracy, ModelFile, score_model
from quantize.quality.tasks.solver import (
    Solution,
    SolveRequest,
    SolverFactory,
    SolveSettings,
    math_prompt,
    reply_limit,
)

PROMPT_ROOM = 1024  # context tokens kept for the question beside the longest reply


@dataclass
class TaskReport:
    """Accuracy of every model on one problem set under one set of generation settings."""

    source: str
    sha256: str
    problems: int
    problems_in_file: int
    samples: int
    settings: dict[str, Any]
    settings_hash: str
    models: list[ModelAccuracy]
    answers_file: str
    created: str = field(default_factory=now)


@dataclass(frozen=True)
class _Model:
    name: str
    path: Path
    sha256: str


def request_seed(seed: int, problem: str, sample: int) -> int:
    """The sampling seed of one attempt: the same for every model, different for every problem and sample."""
    return (seed + int(problem[:8], 16) + 1_000_003 * sample) % 2**32


def solve_settings(base: Path, options: EvalOptions) -> SolveSettings:
    """Sampling as recommended for the ladder's model (temperature and length overridable), the thinking budget,
    and a context per sequence that holds a question and the longest reply."""
    info = read_info(base)
    sampling: SamplingParams = sampling_for(ResolvedModel(base, None),
                                            {"temperature": options.temperature, "max_tokens": options.max_tokens})
    context = options.context or reply_limit(sampling, options.thinking).max_tokens + PROMPT_ROOM
    if info.context_length:
        context = min(context, info.context_length)
    return SolveSettings(sampling, options.thinking, context, options.threads or default_threads(),
                         options.parallel)


def _fitted(settings: SolveSettings, models: list[_Model], reporter: Reporter) -> SolveSettings:
    """Fewer sequences (with a note) when `parallel` × the context would not fit beside the largest model;
    the planner's NoFitError, before anything is loaded, when one sequence would not."""
    from localr1.loader import runtime_hardware
    from quantize.quality.tasks.fit import fitting_parallel

    largest = max(models, key=lambda m: m.path.stat().st_size)
    parallel = fitting_parallel(largest.path, settings.context, settings.parallel, runtime_hardware())
    if parallel < settings.parallel:
        reporter.note(f"--parallel lowered from {settings.parallel} to {parallel}: {settings.parallel} sequences of "
                      f"{settings.context} tokens would not fit in memory beside {largest.path.name}")
    return replace(settings, parallel=parallel)


def settings_record(settings: SolveSettings, options: EvalOptions) -> dict[str, Any]:
    """Everything that decides an answer's text (a change means new answers); not how many run together."""
    s, thinking = settings.sampling, settings.thinking
    budget = format_budget(thinking.budget_tokens, thinking.budget_seconds) or None
    return {"prompt": math_prompt("{question}"), "temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k,
            "min_p": s.min_p, "repeat_penalty": s.repeat_penalty, "max_tokens": s.max_tokens,
            "think_budget": budget, "loop_guard": thinking.loop_guard, "seed": options.seed,
            "context": settings.context}


def settings_hash(record: dict[str, Any]) -> str:
    """A short hash of the settings record."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def _models(out_dir: Path, options: EvalOptions, reporter: Reporter) -> list[_Model]:
    manifest, base, base_sha, names = ladder_selection(out_dir, options.types)
    models = [_Model(f"{read_info(base).file_type} base", base, base_sha)]
    for name in names:
        record = manifest.variants[name]
        if not file_matches(out_dir, record.file):
            reporter.note(f"{name}: {resolve_record(out_dir, record.file).name} is missing or changed; skipped "
                          "(rerun quantize to rebuild it)")
            continue
        models.append(_Model(name, resolve_record(out_dir, record.file), record.file.sha256))
    return models


def _requests(problems: list[Problem], samples: int, seed: int) -> list[SolveRequest]:
    return [SolveRequest(p.id, s, math_prompt(p.question), request_seed(seed, p.id, s))
            for p in problems for s in range(samples)]


class _Session:
    """One run: the answers kept so far, the writer for new ones, and the progress bar."""

    def __init__(self, out_dir: Path, digest: str, reporter: Reporter) -> None:
        self.path = out_dir / ANSWERS_NAME
        self.total = 0
        self.digest = digest
        self.reporter = reporter
        self.records, bad = read_records(self.path)
        if bad:
            reporter.note(f"{ANSWERS_NAME}: {bad} unreadable lines ignored (those answers are asked again)")
        self.run = f"{os.getpid()}@{now()}"
        self.done = 0
        self.errors = 0

    def pending(self, model: _Model, requests: list[SolveRequest]) -> list[SolveRequest]:
        return [r for r in requests if (self.digest, model.sha256, r.problem, r.sample) not in self.records]

    def answer(self, model: _Model, pending: list[SolveRequest], settings: SolveSettings,
               solver_factory: SolverFactory, writer: RecordWriter) -> None:
        """Load one model and keep its answers to the pending requests as they come."""
        self.reporter.note(f"{model.name}: {len(pending)} answers to give")
        try:
            solver = solver_factory(model.path, replace(settings, parallel=min(settings.parallel, len(pending))))
        except LocalR1Error as exc:
            self.reporter.note(f"{model.name}: {exc}; skipped")
            return
        try:
            for solution in solver.solve(pending):
                self.keep(writer, model, solution)
                self.done += 1
                self.reporter.advance(self.done, self.total)
        finally:
            solver.close()

    def keep(self, writer: RecordWriter, model: _Model, solution: Solution) -> None:
        if solution.error is not None:  # not kept: a re-run asks again
            self.errors += 1
            self.reporter.note(f"{model.name}: problem {solution.request.problem} sample {solution.request.sample}: "
                               f"{solution.error}")
            return
        record = AnswerRecord(
            settings=self.digest, model_sha256=model.sha256, problem=solution.request.problem,
            sample=solution.request.sample, model=model.name, answer=solution.answer,
            thinking_tokens=solution.thinking_tokens, tokens=solution.tokens, seconds=round(solution.seconds, 3),
            stop=solution.stop, thinking_cut_off=solution.thinking_cut_off, run=self.run, created=now(),
            thinking_closed=solution.thinking_closed, parallel=solution.parallel,
        )
        writer.append(record)
        self.records[record.key] = record


def evaluate_tasks(out_dir: str | Path, options: EvalOptions | None = None, reporter: Reporter | None = None,
                   solver_factory: SolverFactory = batch_solver) -> TaskReport:
    """Answer every problem with the base and every variant (skipping answers kept by earlier runs), holding
    OUT_DIR's run lock, and grade them."""
    out_dir, options = Path(out_dir), options or EvalOptions()
    if options.samples < 1:
        raise EvaluationError(f"--samples must be at least 1, got {options.samples}")
    if options.parallel < 1:
        raise EvaluationError(f"--parallel must be at least 1, got {options.parallel}")
    problem_set = load_problems(options.tasks, options.limit)  # a bad file fails before anything is loaded
    require_ladder(out_dir)
    with locked_dir(out_dir, create=False, alternative=None):
        return _evaluate_locked(out_dir, problem_set, options, reporter or NullReporter(), solver_factory)


def _evaluate_locked(out_dir: Path, problem_set: ProblemSet, options: EvalOptions, reporter: Reporter,
                     solver_factory: SolverFactory) -> TaskReport:
    models = _models(out_dir, options, reporter)
    settings = solve_settings(models[0].path, options)
    record = settings_record(settings, options)
    session = _Session(out_dir, settings_hash(record), reporter)
    requests = _requests(problem_set.problems, options.samples, options.seed)
    work = [(m, session.pending(m, requests)) for m in models]
    session.total = total = sum(len(p) for _, p in work)
    if total:  # before anything is loaded
        settings = _fitted(replace(settings, parallel=min(settings.parallel, max(len(p) for _, p in work))),
                           models, reporter)
    already = len(requests) * len(models) - total
    if already:
        reporter.note(f"{already} of {len(requests) * len(models)} answers kept from earlier runs; {total} to give")
    reporter.start("answering problems", total)
    with RecordWriter(session.path) as writer:
        for model, pending in work:
            if pending:
                session.answer(model, pending, settings, solver_factory, writer)
    reporter.finish()
    scored = []
    for model in models:
        answers = {(r.problem, r.sample): r for r in session.records.values()
                   if r.settings == session.digest and r.model_sha256 == model.sha256}
        identity = ModelFile(model.name, model.path.name, model.sha256, model.path.stat().st_size)
        scored.append(score_model(identity, problem_set.problems, answers, options.samples))
    return TaskReport(
        source=problem_set.source, sha256=problem_set.sha256, problems=len(problem_set.problems),
        problems_in_file=problem_set.total, samples=options.samples, settings=record,
        settings_hash=session.digest, models=scored, answers_file=ANSWERS_NAME,
    )

