"""Cancel latency while a long prompt is read, and what the abort callback costs while decoding.

Latency: a prompt of about 3,500 tokens on the demo model (context 4096, batches of 512); the
engine's cancel is called at a random point of prompt reading (a random batch, at a random
fraction of its duration, estimated from the batch before it), and the time from `cancel()` to
the `Finished` event is recorded. Run it against an older
checkout (PYTHONPATH=that checkout) to measure the behaviour before the abort callback.

Overhead (`--overhead`): greedy decode tokens/s of a bare llama-cpp-python loop with no abort
callback, with a Python callback (takes the GIL after every graph node) and with the native one
the engine installs (C's strlen over a flag); runs interleaved, medians.

    .venv/bin/python benchmarks/cancel.py [--runs 10] [--seed 1] [--overhead --runs 7]
"""

from __future__ import annotations

import argparse
import ctypes
import platform
import random
import statistics
import threading
import time

from localr1.engine import ChatMessage, Finished, LoadParams, SamplingParams
from localr1.engine.engine import Engine
from localr1.registry import resolve_model

FILLER = "The quick brown fox jumps over the lazy dog while the cat watches from the warm windowsill. "
LONG_PROMPT = "Summarise the following text in one sentence.\n\n" + FILLER * 185
PARAMS = LoadParams(context_size=4096, seed=1)
SAMPLING = SamplingParams(temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, max_tokens=4)


def prompt_tokens_of(engine: Engine) -> int:
    """Tokens of the long prompt as the engine sends it."""
    return len(engine.tokenize_prompt(engine.render([ChatMessage("user", LONG_PROMPT)])))


def wait_for_tokens(engine: Engine, count: int, worker: threading.Thread) -> float:
    """Poll until llama.cpp has stored `count` prompt tokens; returns when it saw them."""
    while engine._llm.n_tokens < count and worker.is_alive():
        time.sleep(0.0005)
    return time.perf_counter()


def cancelled_run(engine: Engine, batch: int, fraction: float) -> tuple[float, int, str]:
    """Cancel `fraction` of the way into the prompt batch number `batch` (estimated from the one
    before it); returns (cancel-to-Finished seconds, prompt tokens read, stop reason)."""
    engine.reset_cache()
    result: list[Finished] = []
    finished_at = [0.0]

    def consume() -> None:
        for event in engine.chat([ChatMessage("user", LONG_PROMPT)]):
            if isinstance(event, Finished):
                finished_at[0] = time.perf_counter()
                result.append(event)

    size = engine.load_params.batch_size
    worker = threading.Thread(target=consume)
    started = time.perf_counter()
    worker.start()
    before = wait_for_tokens(engine, (batch - 1) * size, worker) if batch > 1 else started
    begun = wait_for_tokens(engine, batch * size, worker)
    time.sleep(fraction * (begun - before))
    cancelled_at = time.perf_counter()
    engine.cancel()
    worker.join()
    final = result[0]
    return finished_at[0] - cancelled_at, final.stats.prompt_eval_tokens, final.stats.stop_reason


def latency(runs: int, seed: int) -> None:
    """Measure and print cancel latency during prompt reading."""
    rng = random.Random(seed)
    path = resolve_model("demo").path
    engine = Engine(path, PARAMS, SAMPLING)
    prompt_tokens = prompt_tokens_of(engine)
    batches = prompt_tokens // engine.load_params.batch_size  # full batches before the last one
    samples = []
    for _ in range(runs):
        samples.append(cancelled_run(engine, rng.randint(1, batches - 1), rng.uniform(0.05, 0.95)))
    threads = engine.load_params.threads
    engine.close()
    lat = [s[0] for s in samples]
    print(f"model {path.name}, prompt {prompt_tokens} tokens, ctx {PARAMS.context_size}, batch "
          f"{PARAMS.batch_size}, {threads} threads, {platform.machine()}")
    print("| run | cancel → Finished (ms) | prompt tokens read | stop |")
    print("|---|---|---|---|")
    for i, (seconds, read, stop) in enumerate(samples, 1):
        print(f"| {i} | {seconds * 1e3:.0f} | {read} | {stop} |")
    print(f"median {statistics.median(lat) * 1e3:.0f} ms, max {max(lat) * 1e3:.0f} ms over {runs} runs")


def overhead(runs: int, tokens: int) -> None:
    """Decode tokens/s with no abort callback, a Python one and the native one, interleaved."""
    import llama_cpp

    from localr1.engine.abort import AbortSwitch

    path = resolve_model("demo").path
    p = PARAMS.resolved()
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=2048, n_threads=p.threads, n_threads_batch=p.threads,
                          verbose=False)
    ctx = llm._ctx.ctx
    switch = AbortSwitch()
    flag = ctypes.create_string_buffer(2)
    python_cb = llama_cpp.ggml_abort_callback(lambda _data: flag.raw[0] != 0)
    no_cb = llama_cpp.ggml_abort_callback()  # a NULL function pointer: no callback
    prompt = llm.tokenize(b"Write a long, detailed story about a dragon who learns to bake bread.")

    def decode_rate() -> float:
        llm.reset()  # type: ignore[no-untyped-call]
        count = 0
        first = last = 0.0
        for _ in llm.generate(prompt, temp=0.0, top_k=0, top_p=1.0, min_p=0.0):
            last = time.perf_counter()
            if count == 0:
                first = last
            count += 1
            if count >= tokens:
                break
        return (count - 1) / (last - first)

    rates: dict[str, list[float]] = {"none": [], "python": [], "native": []}
    for i in range(runs):
        order = ["none", "python", "native"]
        for name in order[i % 3:] + order[: i % 3]:
            if name == "none":
                llama_cpp.llama_set_abort_callback(ctx, no_cb, None)
            elif name == "python":
                llama_cpp.llama_set_abort_callback(ctx, python_cb, None)
            else:
                switch.attach(ctx)
            rates[name].append(decode_rate())
    llm.close()
    base = rates["none"]
    print(f"model {path.name}, {p.threads} threads, {tokens} tokens per run, {runs} interleaved runs")
    print("| abort callback | decode tokens/s (median) | vs none (median of per-round ratios) |")
    print("|---|---|---|")
    for name, values in rates.items():
        ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
        print(f"| {name} | {statistics.median(values):.1f} | {ratio:.3f} |")


def main() -> None:
    """Parse options and run one of the two measurements."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--overhead", action="store_true", help="measure decode speed with each callback")
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    if args.overhead:
        overhead(args.runs, args.tokens)
    else:
        latency(args.runs, args.seed)


if __name__ == "__main__":
    main()
