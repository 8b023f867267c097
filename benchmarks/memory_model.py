"""Predicted against measured process memory: the demo model and synthetic models of three shapes, several
context sizes, f16 and q8_0 KV caches, right after load and after a prompt that fills the context.

    .venv/bin/python benchmarks/memory_model.py [--quick] [--calibrate] [--markdown out.md]

Each case runs in a fresh process that imports localr1's engine, loads the model through `Engine` (mmap
on, as `localr1 run` does) and reads /proc/self/smaps; what is measured, and why the libraries are read into
the page cache first, is in tests/fixtures/process_memory.py. The GGUF's resident share is printed beside it.
The prediction is `estimate_memory(...).cpu`: `at_load` after loading, `peak_resident` after the fill; both
include the file pages of repacked tensors.
`--calibrate` measures the constants of the runtime overhead first (a bare process, the vocab-only R1
header, the demo model) and prints them for localr1/planner/memory.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from synthetic_models import variant  # noqa: E402

from localr1.gguf_header import read_header  # noqa: E402
from localr1.planner.memory import LIBRARY_PAGES, MiB, estimate_memory  # noqa: E402
from localr1.planner.shape import ModelShape  # noqa: E402
from localr1.planner.weights import WeightsLayout  # noqa: E402
from localr1.registry import resolve_model  # noqa: E402
from tests.fixtures.process_memory import measure_process, planned_part  # noqa: E402


@dataclass(frozen=True)
class Case:
    """One load to measure."""

    label: str
    path: Path
    context: int
    kv_type: str
    flash: bool


def measure(case: Case, fill: bool = True) -> dict[str, Any]:
    """Run the case in a fresh process and return its measurements."""
    return measure_process(case.path, case.context, case.kv_type, case.flash, fill=fill)


def predict(case: Case, repacked: frozenset[str]) -> tuple[int, int, ModelShape]:
    """Predicted CPU resident bytes after load and after the fill."""
    header = read_header(case.path)
    shape = ModelShape.from_header(header)
    weights = WeightsLayout.from_header(header, shape.layers)
    est = estimate_memory(shape, weights, context=case.context, kv_type=case.kv_type,
                          flash_attention=case.flash, repacked_types=repacked)
    return est.cpu.at_load, est.cpu.peak_resident, shape


def cases(quick: bool) -> list[Case]:
    """The demo and three synthetic shapes, f16 KV without flash attention and q8_0 with it, at contexts a
    2-core machine fills in minutes (filling 8192 tokens of the 1.5B shape is 25 TFLOP: half an hour)."""
    demo = resolve_model("demo").path
    out = [Case("demo Q4_1", demo, 2048, "f16", False), Case("demo Q4_1", demo, 4096, "f16", False),
           Case("demo Q4_1", demo, 4096, "q8_0", True)]
    if quick:
        return [*out, Case("small Q4_K_M", variant("small", "Q4_K_M"), 4096, "f16", False)]
    for shape, contexts in (("small", (4096, 8192)), ("medium", (2048, 8192)), ("r1-1.5b", (2048, 4096))):
        for qtype in ("Q4_K_M", "Q8_0"):
            path = variant(shape, qtype)
            out.append(Case(f"{shape} {qtype}", path, contexts[0], "f16", False))
            out.append(Case(f"{shape} {qtype}", path, contexts[1], "q8_0", True))
    return out


def calibrate() -> None:
    """Measure the runtime-overhead constants: a bare process, vocabularies alone, the demo model."""
    import numpy as np

    from tests.fixtures.r1_header import r1_header_part, vocab_only_copy

    vocab_files = [vocab_only_copy(r1_header_part(), Path("/tmp/localr1-bench-models/r1-vocab.gguf")),
                   resolve_model("demo").path, variant("small", "Q8_0"), variant("medium", "Q8_0")]
    bases, rows, costs = [], [], []
    for path in vocab_files:
        header = read_header(path)
        tokens, merges = header.array_lengths["tokenizer.ggml.tokens"], header.array_lengths["tokenizer.ggml.merges"]
        deltas = []
        for _ in range(3):
            m = measure(Case("vocab", path, 0, "f16", False), fill=False)
            bases.append(m["base"]["anon"])
            deltas.append(m["load"]["anon"] - m["base"]["anon"])
        rows.append([1.0, tokens, merges])
        costs.append(statistics.median(deltas))
        print(f"{path.name}: {tokens} tokens, {merges} merges: +{costs[-1] / MiB:.1f} MiB anonymous")
    (c0, per_token, per_merge), *_ = np.linalg.lstsq(np.array(rows), np.array(costs), rcond=None)
    print(f"PROCESS_ANON = {statistics.median(bases) / MiB:.1f} MiB (anonymous, after importing the engine)")
    print(f"VOCAB_BYTES_PER_TOKEN = {per_token:.0f}, VOCAB_BYTES_PER_MERGE = {per_merge:.0f} "
          f"(constant {c0 / MiB:.1f} MiB, part of MODEL_FIXED)")
    demo = resolve_model("demo").path
    case = Case("demo", demo, 2048, "f16", False)
    fixed, library = [], []
    for _ in range(3):
        m = measure(case, fill=False)
        at_load, _, _ = predict(case, frozenset())
        fixed.append(m["load"]["total"] - at_load)
        library.append(m["load"]["other_file"])
    print(f"LIBRARY_PAGES = {statistics.median(library) / MiB:.1f} MiB (other files' resident pages, demo loaded)")
    print(f"MODEL_FIXED should change by {statistics.median(fixed) / MiB:+.1f} MiB (demo at 2048, after load, with "
          "the constants above)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the demo and one small synthetic model")
    parser.add_argument("--calibrate", action="store_true", help="measure the overhead constants first")
    parser.add_argument("--repacked", default="Q4_0,Q4_K,IQ4_NL,Q2_K",
                        help="ggml types this CPU repacks (from the speed calibration)")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--raw", type=Path, help="keep the measurements here (JSON lines); with --predict, read them")
    parser.add_argument("--predict", action="store_true", help="only recompute predictions for the --raw file")
    args = parser.parse_args()
    if args.calibrate:
        calibrate()
        return
    repacked = frozenset(t for t in args.repacked.split(",") if t)
    done: dict[tuple[str, int, str, bool], dict[str, Any]] = {}
    if args.raw and args.raw.exists():
        for line in args.raw.read_text().splitlines():
            item = json.loads(line)
            done[(item["path"], item["context"], item["kv"], item["flash"])] = item["measured"]
    rows = ["| model | context | KV | FA | predicted load MiB | measured load MiB | error | predicted filled MiB "
            "| measured filled MiB | error | error without library pages (load, filled) | library pages MiB "
            "| GGUF pages resident | llama.cpp buffers (MiB) |", "|" + "---|" * 14]
    worst = worst_own = 0.0
    for case in cases(args.quick):
        started = time.perf_counter()
        key = (str(case.path), case.context, case.kv_type, case.flash)
        if key in done:
            m = done[key]
        elif args.predict:
            continue
        else:
            m = measure(case)
            if args.raw:
                with args.raw.open("a") as fh:
                    fh.write(json.dumps({"path": key[0], "context": key[1], "kv": key[2], "flash": key[3],
                                         "measured": m}) + "\n")
        at_load, peak, _ = predict(case, repacked)
        load, fill = m["load"]["total"], m["fill"]["total"]
        e_load, e_fill = at_load / load - 1, peak / fill - 1
        worst = max(worst, abs(e_load), abs(e_fill))
        own_load = (at_load - LIBRARY_PAGES) / planned_part(m["load"]) - 1
        own_fill = (peak - LIBRARY_PAGES) / planned_part(m["fill"]) - 1
        worst_own = max(worst_own, abs(own_load), abs(own_fill))
        buffers = ", ".join(f"{k} {v:.1f}" for k, v in m["buffers"].items())
        resident = m["fill"]["model_resident"] / max(1, m["fill"]["model_mapped"])
        rows.append(f"| {case.label} | {case.context} | {case.kv_type} | {'on' if case.flash else 'off'} | "
                    f"{at_load / MiB:.1f} | {load / MiB:.1f} | {e_load:+.1%} | {peak / MiB:.1f} | {fill / MiB:.1f} "
                    f"| {e_fill:+.1%} | {own_load:+.1%}, {own_fill:+.1%} | {m['fill']['other_file'] / MiB:.1f} "
                    f"| {resident:.0%} | {buffers} |")
        print(rows[-1], f"({time.perf_counter() - started:.0f} s)", flush=True)
    rows.append(f"\nLargest error: {worst:.1%} of the whole; {worst_own:.1%} without the library pages "
                f"(predicted as {LIBRARY_PAGES / MiB:.0f} MiB)")
    text = "\n".join(rows)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
