"""`localr1 quantize` (checkpoint or GGUF → quantized ladder) and `localr1 eval` (its measured quality report).

Nothing here imports llama_cpp at import time: the pipeline modules are imported by the handlers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from localr1.commands.eval_tasks import add_task_options, tasks_command
from localr1.commands.options import CHUNK, COUNT, EVAL_TOP_K, THREADS, TOKENS
from localr1.errors import ConfigError
from localr1.oserrors import ensure_folder
from quantize.ladder.qtypes import DEFAULT_LADDER, QUANT_TYPES, TENSOR_TYPES, parse_tensor_type, parse_types


def _add_eval_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("quality measurement")
    group.add_argument("--heldout", type=Path, help="held-out text file (default: the text shipped with localr1)")
    group.add_argument("--eval-ctx", type=CHUNK, default=512, help="tokens per evaluated chunk (default: 512)")
    group.add_argument("--top-k", type=EVAL_TOP_K, default=128,
                       help="base log-probabilities kept per position (default: 128)")
    group.add_argument("--speed-tokens", type=COUNT, default=64,
                       help="tokens generated to time decoding, 0 to skip (default: 64)")


def add_quantize_parsers(subparsers: Any) -> None:
    """Register `quantize` and `eval` on an argparse subparsers object."""
    q = subparsers.add_parser(
        "quantize", help="quantize a checkpoint or an F16/BF16/F32 GGUF into a ladder of GGUFs, and measure them",
        description="Build a ladder of quantized GGUFs with llama.cpp's quantizer, an importance matrix collected "
                    "on calibration conversations, a manifest, and a quality report.",
    )
    q.add_argument("source", type=Path, help="a checkpoint folder or an unquantized .gguf file")
    q.add_argument("-o", "--out", dest="out_dir", type=Path,
                   help="output directory (default: install into the models folder under the model's key)")
    q.add_argument("--as", dest="as_key", metavar="KEY",
                   help="install under this key (default: the models.toml key recognised from the model's shapes, "
                        "else one made from its name)")
    q.add_argument("--types", default=",".join(DEFAULT_LADDER),
                   help=f"comma-separated types (default: {','.join(DEFAULT_LADDER)}; valid: {', '.join(QUANT_TYPES)})")
    q.add_argument("--threads", type=THREADS, default=0, help="CPU threads (default: physical cores)")
    q.add_argument("--output-type", metavar="TYPE",
                   help=f"tensor type for output.weight (one of {', '.join(TENSOR_TYPES)}; default: llama.cpp's)")
    q.add_argument("--embedding-type", metavar="TYPE", help="tensor type for token_embd.weight (default: llama.cpp's)")
    q.add_argument("--allow-requantize", action="store_true", help="accept a source that is already quantized")
    q.add_argument("--base-type", choices=("f16", "bf16", "f32"), default="f16",
                   help="type a checkpoint is converted to before quantizing (default: f16)")
    q.add_argument("--name", help="file name stem of the outputs (default: the model's name)")
    q.add_argument("--verify", action="store_true", help="re-hash existing outputs instead of trusting size and time")
    group = q.add_argument_group("importance matrix")
    group.add_argument("--no-imatrix", action="store_true", help="quantize without an importance matrix")
    group.add_argument("--imatrix", type=Path, metavar="FILE", help="use this GGUF importance matrix")
    group.add_argument("--calibration", type=Path, metavar="FILE",
                       help="calibration conversations (.json) or text (default: the set shipped with localr1)")
    group.add_argument("--calibration-tokens", type=TOKENS, default=4096,
                       help="at most this many tokens (default: 4096)")
    group.add_argument("--calibration-ctx", type=CHUNK, default=512, help="tokens per calibration chunk (default: 512)")
    q.add_argument("--no-eval", action="store_true", help="do not measure quality at the end")
    _add_eval_options(q)
    q.set_defaults(handler=quantize_command)

    e = subparsers.add_parser("eval", help="measure a ladder's variants against its base (PPL, KLD, top-1, speed; "
                                           "or task accuracy with --tasks)")
    e.add_argument("out_dir", type=Path, help="a directory written by 'localr1 quantize'")
    e.add_argument("--types", help="only these variants (comma-separated)")
    e.add_argument("--threads", type=THREADS, default=0, help="CPU threads (default: physical cores)")
    e.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    _add_eval_options(e)
    add_task_options(e)
    e.set_defaults(handler=eval_command)


def _eval_options(args: argparse.Namespace, types: list[str] | None) -> Any:
    from quantize.quality import EvalOptions

    return EvalOptions(heldout=args.heldout, n_ctx=args.eval_ctx, top_k=args.top_k, speed_tokens=args.speed_tokens,
                       threads=args.threads, types=types)


def _evaluate(out_dir: Path, options: Any, console: Console, as_json: bool) -> int:
    from quantize.outlock import locked_dir
    from quantize.progress import RichReporter
    from quantize.quality.evaluate import evaluate_ladder, require_ladder
    from quantize.quality.report import (
        CHART_NAME,
        accuracy_points,
        png_chart,
        quality_table,
        read_document,
        report_json,
        text_chart,
        write_report,
    )

    require_ladder(out_dir)
    with locked_dir(out_dir, create=False, alternative=None):  # measured, written and charted by one run
        with RichReporter() as reporter:
            report = evaluate_ladder(out_dir, options, reporter)
        path = write_report(out_dir, report)
        chart = png_chart(report, out_dir / CHART_NAME, accuracy_points(read_document(out_dir)))
    if as_json:
        print(json.dumps(report_json(report), indent=2))
        return 0
    console.print(quality_table(report))
    console.print(text_chart(report), highlight=False, markup=False)
    console.print(f"report: {path}" + (f"\nchart: {chart}" if chart else "\nchart: (install matplotlib for a PNG)"),
                  highlight=False, markup=False, soft_wrap=True)
    return 0


def _check_texts(args: argparse.Namespace) -> None:
    """Read the user's calibration and held-out files first: a bad one fails before minutes of work, not after."""
    from quantize.ladder.calibration import load_calibration, load_heldout

    if args.calibration is not None and not args.no_imatrix and args.imatrix is None:
        load_calibration(args.calibration)
    if args.heldout is not None and not args.no_eval:
        load_heldout(args.heldout)


def quantize_command(args: argparse.Namespace) -> int:
    """Build the ladder, then (unless --no-eval) measure it; returns the exit code."""
    from quantize.ladder import LadderOptions, QuantizeOptions, build_ladder
    from quantize.ladder.manifest import inspect_output_dir
    from quantize.outlock import locked_dir
    from quantize.progress import RichReporter

    types = parse_types(args.types)
    qopts = QuantizeOptions(
        threads=args.threads,
        output_tensor_type=parse_tensor_type(args.output_type, "--output-type"),
        token_embedding_type=parse_tensor_type(args.embedding_type, "--embedding-type"),
        allow_requantize=args.allow_requantize,
    )
    options = LadderOptions(
        types=types, quantize=qopts, use_imatrix=not args.no_imatrix, imatrix_file=args.imatrix,
        calibration=args.calibration, calibration_tokens=args.calibration_tokens,
        calibration_ctx=args.calibration_ctx, base_type=args.base_type, name=args.name, rehash=args.verify,
    )
    _check_texts(args)
    console = Console()
    installing = args.out_dir is None
    if installing:
        from localr1.install import install_target

        target = install_target(args.source, args.as_key)
        args.out_dir = target.folder
        ensure_folder(args.out_dir.parent, "models folder")
        console.print(f"installing as {target.key} ({target.how}) in {target.folder}", highlight=False, markup=False,
                      soft_wrap=True)
    elif args.as_key is not None:
        raise ConfigError("--as installs into the models folder and does not go with -o: drop one of them")
    inspect_output_dir(args.out_dir)  # someone else's folder is refused before it is locked
    with locked_dir(args.out_dir, create=True):  # one lock for the ladder and its report
        with RichReporter() as reporter:
            result = build_ladder(args.source, args.out_dir, options, reporter=reporter)
        built = sum(o.status != "skipped" for o in result.outcomes)
        console.print(f"{built} built, {len(result.outcomes) - built} already complete; manifest: "
                      f"{result.out_dir / 'manifest.json'}", highlight=False, markup=False, soft_wrap=True)
        code = 0 if args.no_eval else _evaluate(result.out_dir, _eval_options(args, [t.name for t in types]),
                                                console, as_json=False)
    if installing and code == 0:
        console.print(f"installed: localr1 chat --model {target.key} (localr1 plan {target.key} shows what the "
                      "planner picks)", highlight=False, markup=False, soft_wrap=True)
    return code


def eval_command(args: argparse.Namespace) -> int:
    """Measure every variant of a ladder (KLD, or task accuracy with --tasks) and write quality.json and
    quality.png; returns the exit code."""
    types = [t.name for t in parse_types(args.types)] if args.types else None
    if args.tasks is not None:
        return tasks_command(args, types)
    return _evaluate(args.out_dir, _eval_options(args, types), Console(), as_json=args.json)
