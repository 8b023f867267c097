"""Conversion throughput and peak RSS on a synthetic checkpoint with the 1.5B distill's shapes (~3.5 GB),
measured next to a raw copy (`cp`) of the same bytes in the same run, which is the ceiling.

Usage: .venv/bin/python benchmarks/convert.py [--runs 3] [--workdir /tmp/localr1-bench-convert] [--keep]

Runs alternate (cp, convert, convert, cp, ...) after a `sync`, so both see the same page-cache state:
the source is in the page cache for both (it was just written), outputs go to the same file system.
Two pairs are timed: without fsync (cp vs convert) and durable (cp + sync FILE vs convert with fsync).
Each conversion runs in its own process; its peak RSS comes from os.wait4.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = """
import json, resource, sys, time
start = time.perf_counter()
from quantize.convert.converter import convert
imported = time.perf_counter()
before = resource.getrusage(resource.RUSAGE_SELF)
result = convert(sys.argv[1], sys.argv[2], outtype=sys.argv[3], durable=sys.argv[4] == "1", force=True)
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
peak = int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]) * 1024
print(json.dumps({"convert_s": result.seconds, "import_s": imported - start, "cpu_s": cpu, "rss": peak}))
"""


def _settle() -> None:
    os.sync()
    time.sleep(1.0)


def _run_child(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) and stdout of a child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"command failed: {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime, out


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0]) if Path("/proc/loadavg").exists() else 0.0


def time_copy(src: Path, dst: Path, durable: bool) -> dict[str, float]:
    """One `cp` (then `sync FILE` when durable) of the source bytes."""
    _settle()
    load = _load()
    seconds, cpu, _ = _run_child(["cp", str(src), str(dst)])
    if durable:
        sync_s, sync_cpu, _ = _run_child(["sync", str(dst)])
        seconds, cpu = seconds + sync_s, cpu + sync_cpu
    dst.unlink()
    return {"seconds": seconds, "cpu": cpu, "load": load}


def time_convert(ckpt: Path, out: Path, outtype: str, durable: bool) -> dict[str, float]:
    """One conversion in a fresh process."""
    _settle()
    load = _load()
    wall, _, stdout = _run_child([sys.executable, "-c", CHILD, str(ckpt), str(out), outtype, "1" if durable else "0"])
    data = json.loads(stdout.strip().splitlines()[-1])
    out.unlink()
    return {"seconds": data["convert_s"], "wall": wall, "import": data["import_s"], "cpu": data["cpu_s"],
            "rss": data["rss"], "load": load}


def make_checkpoint(workdir: Path) -> Path:
    """The synthetic 1.5B-shaped checkpoint (written once, reused with --keep)."""
    from tests.fixtures.checkpoints import QWEN2_1_5B_SHAPES, write_checkpoint

    ckpt = workdir / "ckpt-qwen2-1.5b"
    if not (ckpt / "model.safetensors").exists():
        print(f"writing the synthetic checkpoint to {ckpt} ...", file=sys.stderr)
        write_checkpoint(ckpt, QWEN2_1_5B_SHAPES, streamed=True)
    return ckpt


def run(workdir: Path, runs: int, outtype: str) -> dict[str, Any]:
    """Interleaved measurements; returns every sample and the medians."""
    ckpt = make_checkpoint(workdir)
    src = ckpt / "model.safetensors"
    nbytes = src.stat().st_size
    samples: dict[str, list[dict[str, float]]] = {"cp": [], "convert": [], "cp+sync": [], "convert+fsync": []}
    for i in range(runs):
        order = [False, True] if i % 2 == 0 else [True, False]
        for durable in (False, True):
            for convert_first in order:
                if convert_first:
                    key = "convert+fsync" if durable else "convert"
                    samples[key].append(time_convert(ckpt, workdir / "out.gguf", outtype, durable))
                else:
                    key = "cp+sync" if durable else "cp"
                    samples[key].append(time_copy(src, workdir / "copy.bin", durable))
                print(f"run {i + 1}/{runs} {key}: {samples[key][-1]['seconds']:.2f} s", file=sys.stderr)
    medians = {k: nbytes / statistics.median(s["seconds"] for s in v) / 1e9 for k, v in samples.items()}
    return {
        "bytes": nbytes, "outtype": outtype, "runs": runs, "samples": samples, "gb_per_s": medians,
        "peak_rss_mb": max(s["rss"] for k in ("convert", "convert+fsync") for s in samples[k]) / 2**20,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }


def markdown(result: dict[str, Any]) -> str:
    """A RESULTS.md section."""
    g = result["gb_per_s"]
    rows = []
    pairs = (("convert", "cp", "page cache (no fsync)"), ("convert+fsync", "cp+sync", "durable (fsync)"))
    for conv, copy, label in pairs:
        conv_s = ", ".join(f"{s['seconds']:.2f}" for s in result["samples"][conv])
        copy_s = ", ".join(f"{s['seconds']:.2f}" for s in result["samples"][copy])
        rows.append(f"| {label} | {g[conv]:.2f} ({conv_s} s) | {g[copy]:.2f} ({copy_s} s) | "
                    f"{g[conv] / g[copy]:.2f}x |")
    walls = [s["wall"] for s in result["samples"]["convert"]]
    cpu = {k: statistics.median(s["cpu"] for s in v) for k, v in result["samples"].items()}
    loads = [s["load"] for v in result["samples"].values() for s in v]
    process_rate = result["bytes"] / statistics.median(walls) / 1e9
    return "\n".join([
        f"## Conversion: safetensors -> GGUF {result['outtype'].upper()} (synthetic 1.5B shapes)",
        "",
        f"Source: one BF16 safetensors file of {result['bytes'] / 1e9:.2f} GB with the Qwen2 1.5B distill's "
        f"shapes; {result['runs']} runs of each, interleaved, median. Machine: {result['machine']}.",
        "",
        "| mode | localr1 convert GB/s | raw copy GB/s | ratio |",
        "|---|---|---|---|",
        *rows,
        "",
        f"- Peak RSS of the converting process: {result['peak_rss_mb']:.0f} MB (target < 400 MB; VmHWM).",
        f"- CPU seconds (user + system), median: convert {cpu['convert']:.2f}, cp {cpu['cp']:.2f}; "
        f"convert+fsync {cpu['convert+fsync']:.2f}, cp+sync {cpu['cp+sync']:.2f}.",
        f"- 1-minute load average when each run started: {min(loads):.2f} to {max(loads):.2f} "
        "(other work on the machine inflates times).",
        f"- Converter time is the `convert()` call. Whole-process wall time, interpreter start and imports "
        f"included: {statistics.median(walls):.2f} s median, i.e. {process_rate:.2f} GB/s, "
        f"{process_rate / g['cp']:.2f}x the raw copy.",
        "- Throughput = source bytes / seconds for both. `cp` (coreutils, copy_file_range) is the ceiling.",
    ])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a markdown section (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/localr1-bench-convert"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--outtype", default="f16")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic checkpoint for the next run")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = run(args.workdir, args.runs, args.outtype)
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
