"""`localr1 eval --tasks` wall time on the demo ladder: the sequential engine against the batch engine (--parallel N).

Both answer the same problems greedily with the same settings; every run starts from an empty answers file. Runs
are interleaved (the order alternates each round); the ratio is the median of per-round sequential/batch ratios.
The ladder (F16 base of the demo model and its variants, no importance matrix) is built once, not timed.

    .venv/bin/python benchmarks/eval_tasks.py [--types Q8_0,Q4_K_M] [--limit 8] [--tokens 48] [--parallel 4]
                                               [--rounds 3] [--threads 1] [--ladder DIR]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localr1.registry import resolve_model  # noqa: E402
from quantize.ladder import LadderOptions, build_ladder  # noqa: E402
from quantize.ladder.qtypes import QUANT_TYPES, parse_types  # noqa: E402
from quantize.ladder.quantizer import QuantizeOptions, quantize_file  # noqa: E402
from quantize.quality.evaluate import EvalOptions  # noqa: E402
from quantize.quality.tasks.batch_solver import batch_solver  # noqa: E402
from quantize.quality.tasks.evaluate import TaskReport, evaluate_tasks  # noqa: E402
from quantize.quality.tasks.records import ANSWERS_NAME  # noqa: E402
from quantize.quality.tasks.solver import SolverFactory, sequential_solver  # noqa: E402


def demo_ladder(out: Path, types: str, threads: int) -> Path:
    """The demo model dequantized to F16 and quantized to `types` (skipped when already built)."""
    base = out / "demo-F16.gguf"
    if not base.is_file():
        quantize_file(resolve_model("demo").path, base, QUANT_TYPES["F16"],
                      QuantizeOptions(threads=threads, allow_requantize=True))
    build_ladder(base, out / "ladder", LadderOptions(types=parse_types(types),
                                                     quantize=QuantizeOptions(threads=threads), use_imatrix=False))
    return out / "ladder"


def timed(ladder: Path, options: EvalOptions, factory: SolverFactory) -> tuple[float, TaskReport]:
    """One evaluation from an empty answers file: seconds and its report."""
    (ladder / ANSWERS_NAME).unlink(missing_ok=True)
    started = time.perf_counter()
    report = evaluate_tasks(ladder, options, solver_factory=factory)
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default="Q8_0,Q4_K_M")
    parser.add_argument("--limit", type=int, default=8, help="problems of the shipped set")
    parser.add_argument("--tokens", type=int, default=48, help="--max-tokens of every answer")
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ladder", type=Path, help="a folder to build the ladder in (default: a temporary one)")
    args = parser.parse_args()
    work = args.ladder or Path(tempfile.mkdtemp(prefix="eval-bench-"))
    ladder = demo_ladder(work, args.types, args.threads)
    options = EvalOptions(limit=args.limit, temperature=0.0, max_tokens=args.tokens, threads=args.threads,
                          parallel=args.parallel)
    runs: dict[str, list[float]] = {"sequential": [], "batch": []}
    ratios: list[float] = []
    same = True
    for round_ in range(args.rounds):
        order = ["sequential", "batch"] if round_ % 2 == 0 else ["batch", "sequential"]
        seconds: dict[str, float] = {}
        accuracy: dict[str, list[float]] = {}
        for name in order:
            factory = sequential_solver if name == "sequential" else batch_solver
            seconds[name], report = timed(ladder, options, factory)
            accuracy[name] = [m.accuracy for m in report.models]
            runs[name].append(seconds[name])
        ratios.append(seconds["sequential"] / seconds["batch"])
        same = same and accuracy["sequential"] == accuracy["batch"]
        print(f"round {round_ + 1}: sequential {seconds['sequential']:.1f} s, batch {seconds['batch']:.1f} s, "
              f"accuracy {accuracy['sequential']} / {accuracy['batch']}", flush=True)
    models = 1 + len(args.types.split(","))
    print(f"\n{datetime.date.today()} · {os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.1f} · "
          f"{models} models x {args.limit} problems, greedy, {args.tokens} tokens, {args.threads} threads, "
          f"--parallel {args.parallel}, {args.rounds} rounds")
    print(f"sequential median {statistics.median(runs['sequential']):.1f} s, "
          f"batch median {statistics.median(runs['batch']):.1f} s, "
          f"sequential/batch median ratio {statistics.median(ratios):.2f} (per round: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}); same accuracy in every round: {same}")


if __name__ == "__main__":
    main()
