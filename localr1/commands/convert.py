"""`localr1 convert` and `localr1 verify`: checkpoint -> GGUF with a progress bar, and parity checks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localr1.commands.options import size_bytes
from localr1.oserrors import os_errors

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from quantize.convert import ConversionResult, ConvertProgress
    from quantize.quality import VerifyReport

OUTTYPES = ("f32", "f16", "bf16", "q8_0")


def add_convert_parsers(subparsers: Any) -> None:
    """Register `convert` and `verify` on an argparse subparsers object."""
    convert = subparsers.add_parser(
        "convert", help="convert a Hugging Face checkpoint (safetensors) to GGUF",
        description="Convert an R1 distill checkpoint folder (config.json, tokenizer files, *.safetensors) "
                    "to a GGUF file llama.cpp loads. Pickle weights (*.bin, *.pt) are refused.",
    )
    convert.add_argument("checkpoint", help="the checkpoint folder")
    convert.add_argument("-o", "--output", required=True, help="the .gguf file to write")
    convert.add_argument("--outtype", choices=OUTTYPES, default="f16", help="tensor type (default: f16)")
    convert.add_argument("--split-max-size", metavar="SIZE", type=size_bytes,
                         help="split into shards of at most SIZE (e.g. 2G)")
    convert.add_argument("--force", action="store_true", help="overwrite an existing output file")
    convert.add_argument("--verify", action="store_true", help="check the result against the checkpoint")
    convert.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    convert.set_defaults(handler=convert_command)

    verify = subparsers.add_parser(
        "verify", help="check a converted GGUF against its checkpoint",
        description="Tokenizer, logits and chat template parity between a checkpoint and its GGUF.",
    )
    verify.add_argument("checkpoint", help="the checkpoint folder")
    verify.add_argument("gguf", help="the converted .gguf file (the first shard if split)")
    verify.add_argument("--kv-type", choices=("f32", "f16"), default="f32",
                        help="KV cache type for the logits check (default: f32)")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=verify_command)


def _progress_bar(console: Console, disable: bool) -> Progress:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[tensors]} tensors"),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable or not console.is_terminal,  # off a terminal a stopped bar would leave an empty line
        transient=True,
    )


def _summary(result: ConversionResult) -> str:
    from quantize.convert.writer import human_bytes

    rate = result.tensor_bytes / result.seconds / 1e9 if result.seconds else 0.0
    files = ", ".join(str(f) for f in result.files)
    return (f"wrote {files}: {result.architecture} {result.size_label} {result.file_type}, "
            f"{result.tensors} tensors, {human_bytes(result.tensor_bytes)} in {result.seconds:.1f} s "
            f"({rate:.2f} GB/s)")


def _print_report(report: VerifyReport, console: Console) -> None:
    for check, line in zip(report.checks, report.lines(), strict=True):
        console.print(line, style="green" if check.passed else "red", highlight=False, markup=False,
                      soft_wrap=True)


def convert_command(args: argparse.Namespace) -> int:
    """Convert, with a progress bar; with --verify, check the result too."""
    from rich.console import Console

    from quantize.convert import convert

    console = Console(stderr=True)
    split = args.split_max_size or 0
    with _progress_bar(console, disable=args.no_progress) as bar:
        task = bar.add_task("converting", total=None, tensors="0/?")

        def on_progress(p: ConvertProgress) -> None:
            bar.update(task, completed=p.bytes_done, total=p.bytes_total,
                       tensors=f"{p.tensors_done}/{p.tensors_total}")

        result = convert(args.checkpoint, args.output, outtype=args.outtype, split_max_size=split,
                         force=args.force, progress=on_progress)
    print(_summary(result))
    if not args.verify:
        return 0
    from quantize.quality import verify

    with os_errors("read"):
        report = verify(Path(args.checkpoint), result.files[0])
    _print_report(report, Console())
    return 0 if report.passed else 1


def verify_command(args: argparse.Namespace) -> int:
    """Run the parity checks and print one line each (or JSON); exit 1 when any fails."""
    from rich.console import Console

    from quantize.quality import verify

    with os_errors("read"):
        report = verify(Path(args.checkpoint), Path(args.gguf), kv_f32=args.kv_type == "f32")
    if args.json:
        payload = {"passed": report.passed, "checks": [
            {"name": c.name, "passed": c.passed, "detail": c.detail,
             **{k: v for k, v in c.data.items() if isinstance(v, int | float)}} for c in report.checks]}
        json.dump(payload, sys.stdout, indent=2)
        print()
    else:
        _print_report(report, Console())
    return 0 if report.passed else 1
