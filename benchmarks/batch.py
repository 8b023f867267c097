"""Aggregate decode speed with N prompts at once: (a) one after another through the engine, (b) `localr1 batch`'s
engine, (c) a bare loop over llama.cpp's batch API (greedy, stop at end-of-generation, nothing else): the ceiling.

All three run the same prompt tokens, greedy, up to --tokens each; (b) and (c) produce the very same tokens, so
b/c is the batch engine's own overhead. Runs are interleaved (the order rotates each round); medians are reported,
and b/c as the median of per-round ratios. Model loads are not timed.

    .venv/bin/python benchmarks/batch.py [--models demo,r1-1.5b:Q8_0] [--n 1,2,4,8,16] [--rounds 3] [--tokens 32]
    .venv/bin/python benchmarks/batch.py --cpu-split --models demo --n 16 --tokens 16
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

import llama_cpp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from localr1.engine import ChatMessage, Finished, LoadParams, SamplingParams, ThinkingControl  # noqa: E402
from localr1.engine.batch import BatchEngine, SequenceFinished, SequenceRequest  # noqa: E402
from localr1.engine.engine import GGML_KV_TYPES, Engine  # noqa: E402
from localr1.registry import resolve_model  # noqa: E402

TOPICS = ["a dragon who bakes bread", "the history of the bicycle", "a lighthouse keeper", "how tides work",
          "a city under the sea", "the life of a honeybee", "a robot learning to paint", "winter in the mountains",
          "a journey on a night train", "the invention of paper", "a cat who runs a bakery", "volcanoes",
          "a chess tournament", "the first flight", "a garden on the moon", "an old clockmaker"]


def model_path(spec: str) -> Path:
    """`demo`, a registry key, a path, or `SHAPE:QTYPE` of benchmarks/synthetic_models.py."""
    if ":" in spec and not Path(spec).exists():
        from synthetic_models import variant

        shape, qtype = spec.split(":")
        return variant(shape, qtype)
    return resolve_model(spec).path


class BareBatch:
    """llama.cpp's batch API and nothing more: one context, one greedy sampler, one llama_batch."""

    def __init__(self, path: Path, load: LoadParams, sequences: int) -> None:
        mp = llama_cpp.llama_model_default_params()
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), mp)
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch = load.context_size * sequences, load.batch_size, load.batch_size
        cp.n_seq_max, cp.kv_unified = sequences, False
        cp.n_threads, cp.n_threads_batch = load.threads, load.batch_threads
        cp.type_k = cp.type_v = GGML_KV_TYPES[load.kv_cache_type]
        cp.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self.ctx = llama_cpp.llama_init_from_model(self.model, cp)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(load.batch_size, 0, 1)
        self.greedy = llama_cpp.llama_sampler_init_greedy()
        self.batch_size = load.batch_size

    def run(self, prompts: list[list[int]], tokens: int) -> int:
        """Prompts in, up to `tokens` greedy tokens each; returns the tokens generated."""
        llama_cpp.llama_memory_clear(self.memory, True)
        b = self.batch
        pending = [list(p) for p in prompts]
        pos = [0] * len(prompts)
        made = [0] * len(prompts)
        live = set(range(len(prompts)))
        while live:
            n = 0
            wanted: list[tuple[int, int]] = []
            for s in sorted(live, key=lambda s: len(pending[s]) > 1):
                take = pending[s][: self.batch_size - n]
                for i, token in enumerate(take):
                    b.token[n], b.pos[n], b.n_seq_id[n], b.seq_id[n][0] = token, pos[s] + i, 1, s
                    last = i == len(take) - 1 and len(take) == len(pending[s])
                    b.logits[n] = last
                    if last:
                        wanted.append((s, n))
                    n += 1
                pos[s] += len(take)
                pending[s] = pending[s][len(take):]
                if n == self.batch_size:
                    break
            b.n_tokens = n
            if llama_cpp.llama_decode(self.ctx, b) != 0:
                raise RuntimeError("llama_decode failed")
            for s, row in wanted:
                token = llama_cpp.llama_sampler_sample(self.greedy, self.ctx, row)
                if llama_cpp.llama_vocab_is_eog(self.vocab, token):
                    live.discard(s)
                    continue
                made[s] += 1
                if made[s] >= tokens:
                    live.discard(s)
                else:
                    pending[s] = [token]
        return sum(made)

    def close(self) -> None:
        """Free everything."""
        llama_cpp.llama_sampler_free(self.greedy)
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)
        llama_cpp.llama_model_free(self.model)


def run_sequential(engine: Engine, messages: list[list[ChatMessage]]) -> int:
    total = 0
    for conversation in messages:
        engine.reset_cache()
        final = list(engine.chat(conversation))[-1]
        assert isinstance(final, Finished)
        total += final.stats.generated_tokens
    return total


def run_batched(engine: BatchEngine, requests: list[SequenceRequest]) -> int:
    return sum(e.stats.generated_tokens for _, e in engine.run(requests) if isinstance(e, SequenceFinished))


def timed(fn: object, *args: object) -> tuple[float, int]:
    started = time.perf_counter()
    made = fn(*args)  # type: ignore[operator]
    return time.perf_counter() - started, int(made)


def bench_model(spec: str, sizes: list[int], rounds: int, tokens: int, load: LoadParams) -> list[str]:
    path = model_path(spec)
    sampling = SamplingParams(temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, max_tokens=tokens, seed=1)
    single = Engine(path, load, sampling)
    rows = [f"**{spec}** (`{path.name}`, {single.info.file_type}), {load.threads} threads, {tokens} tokens per "
            f"prompt, {rounds} interleaved rounds", "",
            "| N | (a) sequential, engine tok/s | (b) `localr1 batch` tok/s | (c) bare batch loop tok/s | "
            "b / c | c / c(N=1) | b / a |", "|---|---|---|---|---|---|---|"]
    c_single: float | None = None
    for n in sizes:
        conversations = [[ChatMessage("user", f"Write a long story about {TOPICS[i % len(TOPICS)]}.")]
                         for i in range(n)]
        batch = BatchEngine(path, load, sampling, parallel=n)
        bare = BareBatch(path, batch.load_params, n)
        prepared = [batch.prepare(c) for c in conversations]
        controls = ThinkingControl(loop_guard="warn")  # the guard runs but never cuts a sequence short
        rates: dict[str, list[float]] = {"a": [], "b": [], "c": []}
        made: dict[str, int] = {}
        for r in range(rounds):
            order = ["a", "b", "c"][r % 3:] + ["a", "b", "c"][: r % 3]
            for which in order:
                if which == "a":
                    seconds, count = timed(run_sequential, single, conversations)
                elif which == "b":
                    requests = [SequenceRequest(str(i), p, sampling, controls) for i, p in enumerate(prepared)]
                    seconds, count = timed(run_batched, batch, requests)
                else:
                    seconds, count = timed(bare.run, [p.tokens for p in prepared], tokens)
                rates[which].append(count / seconds)
                made[which] = count
        bare.close()
        batch.close()
        if made["b"] != made["c"]:
            print(f"warning: N={n}: (b) made {made['b']} tokens, (c) {made['c']}", file=sys.stderr)
        med = {k: statistics.median(v) for k, v in rates.items()}
        b_over_c = statistics.median(b / c for b, c in zip(rates["b"], rates["c"], strict=True))
        c_single = c_single or med["c"]
        rows.append(f"| {n} | {med['a']:.1f} | {med['b']:.1f} | {med['c']:.1f} | {b_over_c:.3f} | "
                    f"{med['c'] / c_single:.2f} | {med['b'] / med['a']:.2f} |")
        print(rows[-1], flush=True)
    single.close()
    return rows


def cpu_split(spec: str, n: int, tokens: int, load: LoadParams) -> str:
    """(b)'s thread CPU time inside llama_decode against everything else (with one thread, decode runs here)."""
    from localr1.engine.batch import native

    path = model_path(spec)
    sampling = SamplingParams(temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, max_tokens=tokens, seed=1)
    engine = BatchEngine(path, replace(load, threads=1, batch_threads=1), sampling, parallel=n)
    inside = [0.0]
    original = native.BatchContext.decode

    def measured(self: native.BatchContext, entries: list[native.BatchEntry]) -> dict[int, int]:
        started = time.thread_time()
        try:
            return original(self, entries)
        finally:
            inside[0] += time.thread_time() - started

    native.BatchContext.decode = measured  # type: ignore[method-assign]
    requests = [SequenceRequest(str(i), engine.prepare([ChatMessage("user", f"Write a long story about "
                                                                    f"{TOPICS[i % len(TOPICS)]}.")]),
                                sampling, ThinkingControl(loop_guard="warn")) for i in range(n)]
    started = time.thread_time()
    made = run_batched(engine, requests)
    total = time.thread_time() - started
    native.BatchContext.decode = original  # type: ignore[method-assign]
    engine.close()
    rest = total - inside[0]
    return (f"{spec}, N={n}: {made} tokens, {engine.steps} steps; thread CPU {total:.3f} s, inside llama_decode "
            f"{inside[0]:.3f} s, outside {rest:.3f} s = {rest / total * 100:.1f}% ({rest / made * 1e6:.0f} µs/token)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="demo,r1-1.5b:Q8_0")
    parser.add_argument("--n", default="1,2,4,8,16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--cpu-split", action="store_true",
                        help="instead: (b)'s CPU time inside llama_decode vs outside, one thread (load-proof)")
    args = parser.parse_args()
    load = replace(LoadParams(context_size=512, seed=1, threads=args.threads).resolved())
    sizes = [int(n) for n in args.n.split(",")]
    if args.cpu_split:
        for spec in args.models.split(","):
            for n in sizes:
                print(cpu_split(spec, n, args.tokens, load), flush=True)
        return
    started = os.getloadavg()
    print(f"{datetime.date.today()}, load average at start {started[0]:.2f} (1 min) / {started[1]:.2f} (5 min)")
    out: list[str] = []
    for spec in args.models.split(","):
        out += [*bench_model(spec, sizes, args.rounds, args.tokens, load), ""]
    ended = os.getloadavg()
    print("\n".join(out))
    print(f"load average at end {ended[0]:.2f} (1 min) / {ended[1]:.2f} (5 min)")


if __name__ == "__main__":
    main()
