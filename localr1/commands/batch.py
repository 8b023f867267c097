"""`localr1 batch`: many prompts through one model as parallel sequences, with resumable results."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localr1.batch_files import PromptLine, ResultsFile, read_prompts
from localr1.commands.run import load_request_from, thinking_control_from
from localr1.errors import ConfigError, ContextOverflowError, TemplateError, WorkerError

if TYPE_CHECKING:
    from rich.console import Console

    from localr1.engine import ThinkingControl
    from localr1.engine.batch import BatchEngine, SequenceFinished, SequenceRequest
    from localr1.engine.batch.isolated import IsolatedBatch


def _record(prompt: PromptLine, final: SequenceFinished) -> dict[str, Any]:
    stats = final.stats
    return {
        "id": prompt.id,
        "line": prompt.line,
        "thinking": final.thinking,
        "answer": final.answer,
        "stop_reason": stats.stop_reason,
        "truncated": stats.truncated,
        "loop_detected_at": final.loop_detected_at,
        "thinking_forced_closed": final.thinking_forced_closed,
        "stats": asdict(stats),
    }


def _requests(engine: BatchEngine | IsolatedBatch, prompts: list[PromptLine], controls: ThinkingControl,
              warn: Any) -> tuple[list[SequenceRequest], dict[str, PromptLine]]:
    from localr1.engine.batch import SequenceRequest

    requests: list[SequenceRequest] = []
    by_id: dict[str, PromptLine] = {}
    for prompt in prompts:
        try:
            prepared = engine.prepare(prompt.messages)
        except (ContextOverflowError, TemplateError, ConfigError) as exc:
            warn(f"line {prompt.line}: {exc} (skipped)")
            continue
        requests.append(SequenceRequest(prompt.id, prepared, engine.sampling, controls))
        by_id[prompt.id] = prompt
    return requests, by_id


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links too)."""
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def batch_command(args: argparse.Namespace) -> int:
    """Answer every prompt not answered yet; exit 0 when all were, 1 when some lines were skipped, 130 on Ctrl-C
    (143 on SIGTERM)."""
    from rich.console import Console

    from localr1.interrupts import terminate_as_interrupt
    from quantize.outlock import locked_file

    source: Path = args.prompts
    output: Path = args.output
    if _same_file(output, source):
        raise ConfigError(f"-o {output} is the prompts file: results are appended to -o, so give another file")
    prompts, problems = read_prompts(source)
    err = Console(stderr=True, highlight=False)

    def warn(text: str) -> None:
        err.print(f"localr1: {source}: {text}", markup=False)

    for problem in problems:
        warn(f"{problem} (skipped)")
    # SIGTERM (a service manager, `timeout`) stops as Ctrl-C does: the answers so far kept, the lock removed
    with terminate_as_interrupt() as stop, locked_file(output):
        results = ResultsFile(output)
        try:
            for note in results.notes:
                err.print(f"localr1: {note}", markup=False)
            todo = [p for p in prompts if p.id not in results.done]
            if not todo:
                err.print(f"localr1: all {len(prompts)} prompts are answered in {output}", markup=False)
                return 1 if problems else 0
            answered, skipped = _generate(args, todo, results, err, warn)
        finally:
            results.close()
    left = len(todo) - answered - skipped
    if left:
        what = "terminated" if stop.terminated else "interrupted"
        err.print(f"localr1: {what}: {answered} answered, {left} left; run the same command again to resume",
                  markup=False)
        return 143 if stop.terminated else 130
    err.print(f"localr1: {answered} answered, {len(prompts) - len(todo)} were already in {output}", markup=False)
    return 1 if problems or skipped else 0


def _generate(args: argparse.Namespace, todo: list[PromptLine], results: ResultsFile, err: Console,
              warn: Any) -> tuple[int, int]:
    """Run the prompts; returns (answered, skipped). Ctrl-C stops after the current step. With RPC workers the
    model runs in a child process: a lost worker ends the run with a WorkerError, the answers so far written."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from localr1.commands.run import loop_notice
    from localr1.engine import LoopDetected
    from localr1.engine.batch import BatchEngine, SequenceFinished
    from localr1.loader import planned_batch_load

    overrides = {"temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k,
                 "max_tokens": args.max_tokens, "seed": args.seed}
    parallel = min(args.parallel, len(todo))
    load = planned_batch_load(args.model, load_request_from(args), overrides, parallel)
    engine: BatchEngine | IsolatedBatch
    if load.params.workers:  # llama.cpp aborts the process that loses a worker: not this one
        from localr1.engine.batch.isolated import IsolatedBatch

        engine = IsolatedBatch(load.path, load.params, load.sampling, parallel, probed=True)
    else:
        engine = BatchEngine(load.path, load.params, load.sampling, parallel)
    controls = thinking_control_from(args)
    answered = skipped = 0
    try:
        requests, by_id = _requests(engine, todo, controls, warn)
        skipped = len(todo) - len(requests)
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err, transient=False)
        with progress:
            task = progress.add_task("answering", total=len(requests), rate="")
            tokens = 0
            for rid, event in engine.run(requests):
                prompt = by_id[rid]
                if isinstance(event, LoopDetected):  # said as `run` says it
                    warn(f"line {prompt.line}: {loop_notice(event)}")
                if not isinstance(event, SequenceFinished):
                    continue
                if event.stats.stop_reason in ("error", "cancelled"):
                    warn(f"line {prompt.line}: {event.error or 'stopped'} (not written; a re-run retries it)")
                    skipped += 1
                    continue
                results.append(_record(prompt, event))
                answered += 1
                tokens += event.stats.generated_tokens
                elapsed = progress.tasks[0].elapsed or 0.0
                rate = f"{tokens / elapsed:.1f} tok/s" if elapsed > 0 else ""
                progress.update(task, advance=1, rate=rate)
    except KeyboardInterrupt:
        pass
    except WorkerError as exc:
        raise WorkerError(f"{exc.message}; every answer finished before it is kept in {args.output} "
                          f"({answered} this run): restart the worker and run the same command again to resume"
                          ) from None
    finally:
        engine.close()
    return answered, skipped


def add_batch_parser(sub: Any, add_load: Any, add_sampling: Any) -> None:
    """The `batch` subcommand."""
    from localr1.commands.options import THINK_BUDGET, integer

    batch = sub.add_parser("batch", help="answer many prompts from a JSON Lines file, several at a time")
    batch.add_argument("prompts", type=Path, help='JSON Lines: one {"id": ..., "prompt": "..."} per line')
    batch.add_argument("-o", "--output", type=Path, required=True,
                       help="results, JSON Lines; prompts already in it are skipped (resume)")
    batch.add_argument("--parallel", "-p", type=integer(1, 256, "a whole number of sequences from 1 to 256"),
                       default=4, help="sequences decoded together (default: 4); --ctx is per sequence")
    batch.add_argument("--think-budget", type=THINK_BUDGET, metavar="N|Ns",
                       help="end each reply's thinking after N tokens (2000) or seconds (90s); 0 answers directly")
    batch.add_argument("--loop-guard", choices=("off", "warn", "act"), default="act",
                       help="on repeating output: do nothing, note it, or end the thinking / stop (default: act)")
    add_load(batch)
    add_sampling(batch)
    batch.set_defaults(handler=_batch)


def _batch(args: argparse.Namespace) -> int:
    return batch_command(args)

