"""Predicted against measured speed: decode and prompt tokens/s of the demo and of synthetic models in
several types, weights resident (steady state), on this machine.

    .venv/bin/python benchmarks/speed_model.py [--rounds 3] [--measure] [--quick] [--markdown out.md]

The prediction uses this CPU's calibration (what `localr1 plan --measure` measures), the GGUF's exact
per-type bytes and the speed model of localr1/planner/speed.py. The measurement loads each model as the
plan would (flash attention on, physical cores, mmap), warms it up (every weight read twice), then times a
512-token prompt (the fastest of at least three runs and 1.5 s) and 48 single-token decode steps after a
16-token prompt (their first quartile, the statistic the calibration uses: a busy machine only adds time).
Right before each model, the calibration measures again the types that model uses, so that calibration and
measurement see the same machine (other work on it changes both alike); the table gives the median over
rounds of each figure and of each round's error.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from synthetic_models import variant  # noqa: E402

from localr1.engine.params import default_threads  # noqa: E402
from localr1.gguf_header import read_header  # noqa: E402
from localr1.hardware import CPUSpeed, probe, with_speed  # noqa: E402
from localr1.planner.shape import ModelShape  # noqa: E402
from localr1.planner.speed import PROMPT_LENGTH, predict_speed  # noqa: E402
from localr1.planner.weights import WeightsLayout  # noqa: E402
from localr1.registry import resolve_model  # noqa: E402

DECODE_STEPS = 48
PROMPT_SECONDS = 1.5  # a prompt is timed at least three times and for this long: the fastest counts


def cases(quick: bool) -> list[tuple[str, Path]]:
    """The demo and synthetic models of three shapes in the ladder's main types."""
    out = [("demo Q4_1", resolve_model("demo").path)]
    wanted = [("small", "Q4_K_M"), ("medium", "Q4_K_M"), ("r1-1.5b", "Q4_K_M")] if quick else [
        ("small", "Q4_K_M"), ("small", "Q8_0"), ("medium", "Q4_K_M"), ("medium", "Q8_0"),
        ("r1-1.5b", "Q4_K_M"), ("r1-1.5b", "Q6_K"), ("r1-1.5b", "Q8_0"), ("r1-1.5b", "F16")]
    return out + [(f"{shape} {qtype}", variant(shape, qtype)) for shape, qtype in wanted]


def time_model(path: Path, threads: int) -> tuple[float, float]:
    """Measured decode tokens/s (median step) and prompt tokens/s of one model."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=1024, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, flash_attn=True, verbose=False)
    try:
        n_vocab = llm.n_vocab()
        tokens = [(11 + 37 * i) % (n_vocab - 10) + 5 for i in range(PROMPT_LENGTH)]
        llm.eval(tokens[:64])  # warm up: every weight read, pages resident
        llm.eval(tokens[64:80])
        times: list[float] = []
        while len(times) < 3 or (sum(times) < PROMPT_SECONDS and len(times) < 20):
            llm.reset()  # type: ignore[no-untyped-call]
            started = time.perf_counter()
            llm.eval(tokens)
            times.append(time.perf_counter() - started)
        prompt_s = min(times)  # another process can only add time
        llm.reset()  # type: ignore[no-untyped-call]
        llm.eval(tokens[:16])
        steps = []
        for i in range(DECODE_STEPS):
            started = time.perf_counter()
            llm.eval([tokens[16 + i]])
            steps.append(time.perf_counter() - started)
        steps.sort()
        return 1 / steps[len(steps) // 4], PROMPT_LENGTH / prompt_s  # the calibration's quantile
    finally:
        llm.close()


def before_row_costs(speed: CPUSpeed) -> CPUSpeed:
    """The calibration as it was before the cost per row: each type's whole time on SPEED_SHAPE put on its bytes
    (decode) and on its FLOPs (prompt), so that the table can show the error of both models side by side."""
    import gguf

    from localr1.planner.calibrate import SPEED_SHAPE, prompt_work, pure_tensors, streamed_bytes, streamed_rows

    bandwidth, flops = {}, {}
    for name, bw in speed.type_bandwidth.items():
        tensors = pure_tensors(SPEED_SHAPE, gguf.GGMLQuantizationType[name])
        rows, n_bytes = streamed_rows(tensors), streamed_bytes(tensors)
        prompt_rows, work = prompt_work(SPEED_SHAPE, tensors)
        bandwidth[name] = n_bytes / (n_bytes / bw + rows * speed.type_row_s.get(name, 0.0))
        if name in speed.type_flops:
            flop_s = speed.type_flops[name]
            flops[name] = work / (work / flop_s + prompt_rows * speed.type_prompt_row_s.get(name, 0.0))
    return replace(speed, type_bandwidth=bandwidth, type_flops=flops, type_row_s={}, type_prompt_row_s={})


def quiet_or_busy(load: float, threads: int) -> str:
    """What the highest load average says: the benchmark's own threads, or other work besides."""
    if load <= threads + 0.5:
        return f"quiet: the load is the benchmark's own {threads} threads"
    return f"busy: other work shared the cores with the benchmark's {threads} threads"


def used_types(paths: list[Path]) -> tuple[str, ...]:
    """The ggml types of the matrices in these files (what the calibration must measure)."""
    import gguf

    found = set()
    for path in paths:
        for t in read_header(path).tensors:
            if len(t.shape) > 1:
                found.add(gguf.GGMLQuantizationType(t.type_id).name)
    return tuple(sorted(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--threads", type=int, default=0, help="threads for calibration and runs (default: cores)")
    args = parser.parse_args()
    from localr1.planner.calibrate import measure_cpu_speed

    threads = args.threads or default_threads()
    machine = probe(check_offload=False)
    models = cases(args.quick)
    layouts = {}
    for label, path in models:
        header = read_header(path)
        shape = ModelShape.from_header(header)
        layouts[label] = (shape, WeightsLayout.from_header(header, shape.layers))
    results: dict[str, list[tuple[float, float, float, float, float, float]]] = {label: [] for label, _ in models}
    loads: list[float] = []  # the 1-minute load average before each measurement: how busy the machine was
    for r in range(args.rounds):
        print(f"round {r + 1}", flush=True)
        for label, path in models:
            speed = measure_cpu_speed(used_types([path]), threads=threads)
            hardware = with_speed(machine, speed)
            shape, weights = layouts[label]
            predicted = predict_speed(shape, weights, hardware, context=64, kv_type="f16")
            without_rows = predict_speed(shape, weights, with_speed(machine, before_row_costs(speed)),
                                         context=64, kv_type="f16")
            loads.append(os.getloadavg()[0])
            decode, prompt = time_model(path, threads)
            results[label].append((predicted.decode_tps, decode, predicted.prompt_tps, prompt,
                                   without_rows.decode_tps, without_rows.prompt_tps))
            print(f"  {label}: decode {predicted.decode_tps:.1f} predicted / {decode:.1f} measured, "
                  f"prompt {predicted.prompt_tps:.1f} / {prompt:.1f}; calibration {speed.source.split(' with ')[0]}, "
                  + ", ".join(f"{k} {v / 1e9:.1f} GB/s {speed.type_row_s.get(k, 0) * 1e9:.1f} ns/row"
                              for k, v in speed.type_bandwidth.items())
                  + f"; before row costs {without_rows.decode_tps:.1f} / {without_rows.prompt_tps:.1f}", flush=True)
    loads.sort()
    preamble = (f"{datetime.date.today().isoformat()}, {machine.cpu_model}, {machine.physical_cores} physical cores, "
              f"{threads} threads, {args.rounds} interleaved rounds; 1-minute load average before each measurement: "
              f"min {loads[0]:.1f}, median {statistics.median(loads):.1f}, max {loads[-1]:.1f} "
              f"({quiet_or_busy(loads[-1], threads)})\n\n")
    rows = ["| model | weights MB | predicted decode | measured decode | error | error before row costs "
            "| predicted prompt | measured prompt | error | error before row costs |", "|" + "---|" * 10]
    worst = 0.0
    for label, _ in models:
        runs = results[label]
        med = [statistics.median(run[i] for run in runs) for i in range(4)]
        e_decode = statistics.median(run[0] / run[1] - 1 for run in runs)
        e_prompt = statistics.median(run[2] / run[3] - 1 for run in runs)
        e_old = statistics.median(run[4] / run[1] - 1 for run in runs)
        e_old_prompt = statistics.median(run[5] / run[3] - 1 for run in runs)
        worst = max(worst, abs(e_decode))
        rows.append(f"| {label} | {layouts[label][1].total / 1e6:.0f} | {med[0]:.1f} | {med[1]:.1f} | "
                    f"{e_decode:+.0%} | {e_old:+.0%} | {med[2]:.1f} | {med[3]:.1f} | {e_prompt:+.0%} | "
                    f"{e_old_prompt:+.0%} |")
    rows.append(f"\nLargest decode error (median over {args.rounds} rounds): {worst:.0%}")
    text = preamble + "\n".join(rows)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
