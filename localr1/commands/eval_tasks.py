"""`localr1 eval LADDER --tasks [PROBLEMS.jsonl]`: task accuracy of the base and every variant.

Nothing here imports llama_cpp at import time: the pipeline modules are imported by the handler.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console

from localr1.commands.options import CONTEXT, MAX_TOKENS, SEED, TEMPERATURE, THINK_BUDGET, integer

SHIPPED = "shipped"
SAMPLES = integer(1, 1000, what="a whole number of samples from 1 to 1000")
PARALLEL = integer(1, 256, "a whole number of sequences from 1 to 256")
LIMIT = integer(1, what="a whole number of problems, at least 1")


def add_task_options(parser: argparse.ArgumentParser) -> None:
    """The options of a task-accuracy run, on the `eval` parser."""
    group = parser.add_argument_group("task accuracy (with --tasks)")
    group.add_argument("--tasks", nargs="?", const=SHIPPED, metavar="PROBLEMS.jsonl",
                       help="measure accuracy on these problems ({\"question\", \"answer\"[, \"kind\"]} per line) "
                            "instead of KLD; alone: the 60 problems shipped with localr1")
    group.add_argument("--samples", type=SAMPLES, default=1,
                       help="answers per problem at the recommended temperature (pass@1 averaged, majority vote)")
    group.add_argument("--think-budget", type=THINK_BUDGET, metavar="N|Ns",
                       help="end each reply's thinking after N tokens (2000) or seconds (90s) and let the model "
                            "answer, as 'run --think-budget'; 0 answers directly")
    group.add_argument("--parallel", "-p", type=PARALLEL,
                       help="sequences decoded together (default: 4, as 'localr1 batch'); --ctx is per sequence")
    group.add_argument("--limit", type=LIMIT, metavar="N", help="only the first N problems")
    group.add_argument("--temperature", type=TEMPERATURE, help="override the recommended temperature (0: greedy)")
    group.add_argument("--max-tokens", type=MAX_TOKENS, help="override the recommended reply length")
    group.add_argument("--seed", type=SEED, default=0, help="base of every answer's sampling seed (default: 0)")
    group.add_argument("--ctx", type=CONTEXT, help="context size per sequence (default: the longest reply plus 1024)")


def _options(args: argparse.Namespace, types: list[str] | None) -> Any:
    from pathlib import Path

    from localr1.engine.thinking import ThinkingControl
    from quantize.quality.evaluate import EvalOptions

    tokens, seconds = args.think_budget or (None, None)
    return EvalOptions(
        types=types, threads=args.threads, tasks=None if args.tasks == SHIPPED else Path(args.tasks),
        limit=args.limit, samples=args.samples, thinking=ThinkingControl(budget_tokens=tokens, budget_seconds=seconds),
        temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed, context=args.ctx,
        parallel=EvalOptions.parallel if args.parallel is None else args.parallel,
    )


def tasks_command(args: argparse.Namespace, types: list[str] | None) -> int:
    """Answer, grade, write quality.json's tasks section and the chart, print the table; 130 when interrupted."""
    from quantize.outlock import locked_dir
    from quantize.progress import RichReporter
    from quantize.quality.evaluate import require_ladder
    from quantize.quality.report import CHART_NAME, png_chart, read_document, report_from_document
    from quantize.quality.tasks.evaluate import evaluate_tasks
    from quantize.quality.tasks.problems import load_problems
    from quantize.quality.tasks.records import ANSWERS_NAME
    from quantize.quality.tasks.report import (
        HEADER_NOTE,
        interval_chart,
        kld_by_file,
        points,
        tasks_json,
        tasks_table,
        write_tasks_report,
    )

    options = _options(args, types)
    out_dir = args.out_dir
    load_problems(options.tasks, options.limit)  # a bad file fails before the ladder is even looked at
    require_ladder(out_dir)
    console = Console()
    if not console.is_terminal:  # a file or a pipe: the whole table, unsqueezed
        console = Console(width=160)
    with locked_dir(out_dir, create=False, alternative=None):  # answered, written and charted by one run
        try:
            with RichReporter() as reporter:
                report = evaluate_tasks(out_dir, options, reporter)
        except KeyboardInterrupt:
            print(f"localr1: interrupted; the answers given so far are kept in {out_dir / ANSWERS_NAME}: "
                  "run the same command again to continue", file=sys.stderr)
            return 130
        path = write_tasks_report(out_dir, report)
        document = read_document(out_dir)
        chart = png_chart(report_from_document(document), out_dir / CHART_NAME, points(report),
                          title=report.models[0].file)
    if args.json:
        print(json.dumps(tasks_json(report), indent=2))
        return 0
    console.print(tasks_table(report, kld_by_file(document)))
    console.print(HEADER_NOTE, style="dim", highlight=False, markup=False)
    console.print(interval_chart(report), highlight=False, markup=False)
    incomplete = [m.name for m in report.models if not m.complete]
    if incomplete:
        console.print(f"not every answer could be given for {', '.join(incomplete)}: missing answers count as "
                      "wrong; run again to retry them", highlight=False, markup=False, soft_wrap=True)
    console.print(f"report: {path}" + (f"\nchart: {chart}" if chart else ""), highlight=False, markup=False,
                  soft_wrap=True)
    return 0

