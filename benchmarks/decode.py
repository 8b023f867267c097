"""Decode speed, time to first token and load time: localr1's engine vs a bare llama-cpp-python loop.

Both run the same model, prompt tokens, threads and greedy sampling; runs are interleaved
(alternating which goes first) and the medians and the median of per-pair ratios are reported.

    .venv/bin/python benchmarks/decode.py [--model demo] [--runs 9] [--tokens 128]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import llama_cpp

from localr1.engine import ChatMessage, Finished, LoadParams, SamplingParams
from localr1.engine.engine import Engine
from localr1.registry import resolve_model

PROMPT = "Write a long, detailed story about a dragon who learns to bake bread."


@dataclass
class Sample:
    """One generation's timings."""

    load_s: float
    ttft_s: float
    decode_tps: float
    tokens: int


def bare_llama(path: Path, params: LoadParams) -> llama_cpp.Llama:
    """A Llama built with the very parameters the engine uses."""
    return llama_cpp.Llama(
        model_path=str(path), n_ctx=params.context_size, n_batch=params.batch_size,
        n_threads=params.threads, n_threads_batch=params.batch_threads, n_gpu_layers=params.gpu_layers,
        type_k=1, type_v=1, flash_attn=params.flash_attention, use_mmap=params.use_mmap,
        seed=params.seed, verbose=False,
    )


def run_bare(llm: llama_cpp.Llama, tokens: list[int], n: int) -> tuple[float, float, int]:
    """Greedy generation of up to n tokens; returns (ttft, decode tokens/s, tokens)."""
    llm.reset()  # type: ignore[no-untyped-call]
    eog = llm._model.vocab
    started = time.perf_counter()
    first = last = 0.0
    count = 0
    for token in llm.generate(tokens, temp=0.0, top_p=1.0, top_k=0, min_p=0.0, repeat_penalty=1.0):
        now = time.perf_counter()
        if count == 0:
            first = now
        if llama_cpp.llama_vocab_is_eog(eog, token):
            break
        count += 1
        last = now
        if count >= n:
            break
    return first - started, (count - 1) / (last - first), count


def run_engine(engine: Engine, n: int) -> tuple[float, float, int]:
    """The same generation through the engine's event stream."""
    engine.reset_cache()
    final = None
    for event in engine.chat([ChatMessage("user", PROMPT)]):
        if isinstance(event, Finished):
            final = event
    assert final is not None
    s = final.stats
    return s.time_to_first_token_s, s.decode_tokens_per_s, s.generated_tokens


def main() -> None:
    """Run the interleaved comparison and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    args = parser.parse_args()

    path = resolve_model(args.model).path
    load = LoadParams(context_size=2048, seed=1).resolved()
    sampling = SamplingParams(temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, max_tokens=args.tokens)
    probe = Engine(path, load, sampling)
    prompt_tokens = probe.tokenize_prompt(probe.render([ChatMessage("user", PROMPT)]))
    probe.close()
    bare: list[Sample] = []
    ours: list[Sample] = []
    for i in range(args.runs):
        order = ("bare", "engine") if i % 2 == 0 else ("engine", "bare")
        for which in order:
            t0 = time.perf_counter()
            if which == "bare":
                llm = bare_llama(path, load)
                load_s = time.perf_counter() - t0
                bare.append(Sample(load_s, *run_bare(llm, prompt_tokens, args.tokens)))
                llm.close()
            else:
                engine = Engine(path, load, sampling)
                load_s = time.perf_counter() - t0
                ours.append(Sample(load_s, *run_engine(engine, args.tokens)))
                engine.close()

    def med(samples: list[Sample], attr: str) -> float:
        return float(statistics.median(getattr(s, attr) for s in samples))

    def ratio(attr: str) -> float:
        return float(statistics.median(getattr(o, attr) / getattr(b, attr) for o, b in zip(ours, bare, strict=True)))

    print(f"model {path.name}, {load.threads} threads, ctx {load.context_size}, {args.runs} interleaved runs, "
          f"{platform.processor() or platform.machine()}")
    print("| metric | bare llama-cpp-python | localr1 engine | engine / bare (median of pairs) |")
    print("|---|---|---|---|")
    print(f"| decode tokens/s | {med(bare, 'decode_tps'):.1f} | {med(ours, 'decode_tps'):.1f} | "
          f"{ratio('decode_tps'):.3f} |")
    print(f"| time to first token (ms) | {med(bare, 'ttft_s') * 1e3:.1f} | {med(ours, 'ttft_s') * 1e3:.1f} | "
          f"{ratio('ttft_s'):.3f} |")
    print(f"| load time (ms) | {med(bare, 'load_s') * 1e3:.1f} | {med(ours, 'load_s') * 1e3:.1f} | "
          f"{ratio('load_s'):.3f} |")
    print(f"| tokens generated | {med(bare, 'tokens'):.0f} | {med(ours, 'tokens'):.0f} | |")
    if args.json:
        args.json.write_text(json.dumps({"bare": [vars(s) for s in bare], "engine": [vars(s) for s in ours]}))


if __name__ == "__main__":
    main()
