"""Predicted against measured speed: decode and prompt tokens/s of the demo and of synthetic models in
several types, weights resident (steady state), on this machine.

    .venv/bin/python benchmarks/speed_model.py [--rounds 3] [--measure] [--quick] [--markdown out.md]

The prediction uses this CPU's calibration (`localr1 plan --measure` measures it; `--measure` here does it
first), the GGUF's exact per-type bytes and the speed model of localr1/planner/speed.py. The measurement
loads each model as the plan would (flash attention on, physical cores, mmap), warms it up (every weight
read twice), then times a 512-token prompt and 32 single-token decode steps after a 16-token prompt;
rounds are interleaved across models and the medians reported, so a busy moment hits every model alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from synthetic_models import variant  # noqa: E402

from localr1.engine.params import default_threads  # noqa: E402
from localr1.gguf_header import read_header  # noqa: E402
from localr1.hardware import cached_speed, probe, save_speed, with_speed  # noqa: E402
from localr1.planner.shape import ModelShape  # noqa: E402
from localr1.planner.speed import PROMPT_LENGTH, predict_speed  # noqa: E402
from localr1.planner.weights import WeightsLayout  # noqa: E402
from localr1.registry import resolve_model  # noqa: E402

DECODE_STEPS = 32


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
        llm.reset()  # type: ignore[no-untyped-call]
        started = time.perf_counter()
        llm.eval(tokens)
        prompt_tps = PROMPT_LENGTH / (time.perf_counter() - started)
        llm.reset()  # type: ignore[no-untyped-call]
        llm.eval(tokens[:16])
        steps = []
        for i in range(DECODE_STEPS):
            started = time.perf_counter()
            llm.eval([tokens[16 + i]])
            steps.append(time.perf_counter() - started)
        return 1 / statistics.median(steps), prompt_tps
    finally:
        llm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", action="store_true", help="calibrate this CPU first (else the cached one)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--threads", type=int, default=0, help="threads for calibration and runs (default: cores)")
    args = parser.parse_args()
    threads = args.threads or default_threads()
    machine = probe(check_offload=False)
    speed = None if args.measure else cached_speed(machine, threads)
    if speed is None:
        from localr1.engine.calibrate import measure_cpu_speed

        speed = measure_cpu_speed(threads=threads, progress=lambda what, done: print(f"  {done:4.0%} {what}"))
        save_speed(machine, speed)
    hardware = with_speed(machine, speed)
    print(f"calibration: {speed.source}; repacked: {', '.join(speed.repacked_types) or 'none'}")
    print("decode GB/s by type: " + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in speed.type_bandwidth.items()))
    models = cases(args.quick)
    measured: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in models}
    for r in range(args.rounds):
        for label, path in models:
            measured[label].append(time_model(path, threads))
            print(f"round {r + 1} {label}: {measured[label][-1][0]:.1f} tok/s decode, "
                  f"{measured[label][-1][1]:.1f} tok/s prompt", flush=True)
    rows = ["| model | weights MB | predicted decode | measured decode | error | predicted prompt | measured prompt "
            "| error |", "|" + "---|" * 8]
    worst = 0.0
    for label, path in models:
        header = read_header(path)
        shape = ModelShape.from_header(header)
        weights = WeightsLayout.from_header(header, shape.layers)
        predicted = predict_speed(shape, weights, hardware, context=64, kv_type="f16")
        decode = statistics.median(m[0] for m in measured[label])
        prompt = statistics.median(m[1] for m in measured[label])
        e_decode, e_prompt = predicted.decode_tps / decode - 1, predicted.prompt_tps / prompt - 1
        worst = max(worst, abs(e_decode))
        rows.append(f"| {label} | {weights.total / 1e6:.0f} | {predicted.decode_tps:.1f} | {decode:.1f} | "
                    f"{e_decode:+.0%} | {predicted.prompt_tps:.1f} | {prompt:.1f} | {e_prompt:+.0%} |")
    rows.append(f"\nLargest decode error: {worst:.0%}")
    text = "\n".join(rows)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
