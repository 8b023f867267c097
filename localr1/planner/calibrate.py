"""Measure this CPU once: decode bytes/s and prompt FLOP/s per ggml tensor type, and a token's fixed costs.

Each type gets two synthetic models made of that type only (weights repeated from a block llama.cpp's own
quantizer made): 4 layers of the 1.5B distill's widths, large enough that decoding streams from RAM, and 4
layers of short rows (width 256) with about as many rows but a seventh of the bytes. Together they separate
the type's bytes/s from its cost per matrix row (a dot product's fixed work, which narrow models pay far more
of per byte), for decode and, from 256-token prompts, per prompt token. Two tiny models of 2 and 26 layers give
the fixed cost per token and per layer; a model that is mostly attention, timed at two prompt lengths, gives the
attention's FLOP/s (a prompt's attention runs far below the matrix products' rate).
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import gguf
import llama_cpp
import numpy as np

from localr1.engine.devices import llama_cpp_build
from localr1.engine.load_log import captured_log
from localr1.engine.params import default_threads
from localr1.hardware import CPUSpeed
from localr1.interrupts import signals_deferred
from localr1.planner.mix import Tensor, tensor_list
from localr1.planner.shape import ModelShape
from localr1.planner.speed import attention_flops
from localr1.planner.synthetic import write_synthetic_gguf

T = gguf.GGMLQuantizationType
Progress = Callable[[str, float], None]  # (what, fraction done)
LADDER_TYPES = ("F16", "Q8_0", "Q6_K", "Q5_K", "Q4_K", "Q3_K", "Q2_K", "IQ4_XS")
LEGACY_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL")
SPEED_SHAPE = ModelShape("llama", 4, 1536, 8960, 12, 2, 128, 256, 4096)
ROWS_SHAPE = ModelShape("llama", 4, 256, 53760, 8, 2, 32, 256, 4096)  # about SPEED_SHAPE's bytes, 4.7x its rows
TINY_SHAPE = ModelShape("llama", 2, 64, 128, 2, 1, 32, 256, 4096)
ATTENTION_SHAPE = ModelShape("llama", 4, 64, 64, 32, 4, 128, 256, 4096)  # a prompt's time here is mostly attention
_ATTENTION_LENGTHS = (128, 1024)
BUSY_LOAD_PER_CORE = 0.75  # above this, other processes took a share of the cores while measuring
_DECODE_TOKENS = 48  # their first quartile: a neighbour's burst of under a dozen steps is not seen
_PROMPT_RUNS = 3  # a prompt's time is the best of this many (another process can only add time)
PROMPT_TOKENS = 256  # fewer under-show batch kernels that gain with length (Q6_K: 896 tok/s at 64, 1,305 at 256)


def quantized_sample(qtype: T, n_per_row: int = 1536, rows: int = 16, seed: int = 0) -> bytes:
    """Valid blocks of a quantized type, made by ggml's own quantizer from random values."""
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    lib = ctypes.CDLL(str(sorted(lib_dir.glob("libggml-base.*"))[0]))
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    values = (0.02 * np.random.default_rng(seed).standard_normal(rows * n_per_row)).astype(np.float32)
    out = np.zeros(int(lib.ggml_row_size(int(qtype), n_per_row)) * rows, dtype=np.uint8)
    size = lib.ggml_quantize_chunk(int(qtype), values.ctypes.data, out.ctypes.data, 0, rows, n_per_row, None)
    return out[:size].tobytes()


def pure_tensors(shape: ModelShape, qtype: T) -> list[Tensor]:
    """Every 2-D tensor in one type, 1-D ones in F32 (llama.cpp's `--pure` mix)."""
    return [Tensor(name, ne, qtype if len(ne) > 1 else T.F32) for name, ne in tensor_list(shape)]


def streamed_bytes(tensors: Sequence[Tensor]) -> int:
    """Bytes a decode step reads: every tensor except the token embedding (one row is fetched)."""
    return sum(t.n_bytes for t in tensors if t.name != "token_embd.weight")


def streamed_rows(tensors: Sequence[Tensor]) -> int:
    """Matrix rows a decode step reads (one dot product each)."""
    return sum(t.n_elements // t.ne[0] for t in tensors if len(t.ne) > 1 and t.name != "token_embd.weight")


def prompt_work(shape: ModelShape, tensors: Sequence[Tensor]) -> tuple[int, float]:
    """Matrix rows and FLOPs per prompt token: every layer's matrices but the last layer's FFN (llama.cpp runs it
    for the tokens whose logits are wanted only), and not the output head (the last token's)."""
    last_ffn = f"blk.{shape.layers - 1}.ffn_"
    matrices = [t for t in tensors if len(t.ne) > 1 and t.name.startswith("blk.") and not t.name.startswith(last_ffn)]
    return streamed_rows(matrices), 2 * sum(t.n_elements for t in matrices)


def _attention_s(shape: ModelShape, rate: float) -> float:
    """Seconds of one layer's attention per token of a calibration prompt (0 when the rate is unknown)."""
    return attention_flops(shape, PROMPT_TOKENS) / rate if rate > 0 else 0.0


def split_row_cost(long_rows: tuple[int, float, float], short_rows: tuple[int, float, float]) -> tuple[float, float]:
    """(seconds per unit, seconds per row) from two models' (rows, units of work: bytes or FLOPs, seconds): the
    solution of the two equations, or all of the time on the units when the timings are too noisy to split."""
    (r1, b1, t1), (r2, b2, t2) = long_rows, short_rows
    det = b1 * r2 - b2 * r1
    per_byte = (t1 * r2 - t2 * r1) / det if det else 0.0
    per_row = (b1 * t2 - b2 * t1) / det if det else 0.0
    if per_byte <= 0 or per_row < 0:
        return t1 / b1, 0.0
    return per_byte, per_row


_REPACK = re.compile(r"CPU_REPACK model buffer size =\s*([\d.]+) MiB")


@dataclass(frozen=True)
class _Timing:
    """One model's timings."""

    decode_s: float  # seconds per decoded token: a low quantile (a busy machine only adds time)
    prompt_s: dict[int, float]  # seconds per token of a prompt of each length: the best of a few runs
    repacked: bool  # llama.cpp repacked the weights at load


def _time_model(path: Path, threads: int, prompt_lengths: Sequence[int] = (PROMPT_TOKENS,), runs: int = 1) -> _Timing:
    """Decode steps and prompts of the given lengths, timed on one model."""
    longest = max(prompt_lengths)
    with captured_log(chain=False) as lines:
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=max(512, longest), n_batch=longest, n_threads=threads,
                              n_threads_batch=threads, flash_attn=True, verbose=False)
    repacked = any((m := _REPACK.search(line)) and float(m.group(1)) > 0 for line in lines)
    try:
        prompt = [3 + i % 200 for i in range(longest)]
        llm.eval(prompt[:8])  # warm up: page in, thread pool up
        prompt_s = {}
        for length in prompt_lengths:
            best = float("inf")
            for _ in range(runs):
                llm.reset()  # type: ignore[no-untyped-call]
                started = time.perf_counter()
                llm.eval(prompt[:length])
                best = min(best, time.perf_counter() - started)
            prompt_s[length] = best / length
        llm.reset()  # type: ignore[no-untyped-call]
        llm.eval(prompt[:8])  # decode near the start of the context, as the fixed costs are modelled
        steps = []
        for i in range(_DECODE_TOKENS):
            started = time.perf_counter()
            llm.eval([5 + i])
            steps.append(time.perf_counter() - started)
        steps.sort()
        return _Timing(steps[len(steps) // 4], prompt_s, repacked)
    finally:
        llm.close()


def ram_bandwidth(n_bytes: int = 256 * 2**20, runs: int = 3) -> float:
    """Bytes/s of a large numpy copy (read plus write), best of a few runs."""
    src = np.ones(n_bytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - started)
    return 2 * n_bytes / best


def measure_cpu_speed(types: Sequence[str] = LADDER_TYPES + LEGACY_TYPES, *, threads: int = 0,
                      progress: Progress | None = None, workdir: Path | None = None) -> CPUSpeed:
    """Measure decode bytes/s and prompt FLOP/s for each type on this CPU (a second or two per type)."""
    threads = threads or default_threads()
    report = progress or (lambda _what, _done: None)
    load_before = _load_average()
    steps = len(types) + 4
    folder = Path(tempfile.mkdtemp(prefix="localr1-speed-", dir=workdir))
    try:
        report("memory bandwidth", 0.0)
        bandwidth = ram_bandwidth()
        report("attention", 1 / steps)
        tensors = pure_tensors(ATTENTION_SHAPE, T.F16)
        path = write_synthetic_gguf(folder / "attention.gguf", ATTENTION_SHAPE, tensors, {})
        short, long = _time_model(path, threads, _ATTENTION_LENGTHS, runs=_PROMPT_RUNS).prompt_s.values()
        path.unlink()
        # the longer prompt's tokens cost more by their attention alone (to a deeper mean position)
        deeper = ATTENTION_SHAPE.layers * (attention_flops(ATTENTION_SHAPE, _ATTENTION_LENGTHS[1])
                                           - attention_flops(ATTENTION_SHAPE, _ATTENTION_LENGTHS[0]))
        attention_rate = deeper / (long - short) if long > short else 0.0
        timings = []
        for i, layers in enumerate((2, 26)):
            report(f"fixed costs ({layers} layers)", (2 + i) / steps)
            shape = replace(TINY_SHAPE, layers=layers)
            path = write_synthetic_gguf(folder / f"tiny{layers}.gguf", shape, pure_tensors(shape, T.F32), {})
            timings.append(_time_model(path, threads, runs=_PROMPT_RUNS))
            path.unlink()
        layer_s = max(0.0, (timings[1].decode_s - timings[0].decode_s) / 24)
        token_s = max(0.0, timings[0].decode_s - 2 * layer_s)
        prompt_layer_s = max(0.0, (timings[1].prompt_s[PROMPT_TOKENS] - timings[0].prompt_s[PROMPT_TOKENS]) / 24
                             - _attention_s(TINY_SHAPE, attention_rate))
        type_bw: dict[str, float] = {}
        type_row: dict[str, float] = {}
        type_prompt_row: dict[str, float] = {}
        type_flops: dict[str, float] = {}
        repacked: list[str] = []
        for i, name in enumerate(types):
            report(f"speed of {name}", (4 + i) / steps)
            qtype = T.__members__[name]
            samples: dict[T, bytes] = {} if qtype in (T.F32, T.F16, T.BF16) else {qtype: quantized_sample(qtype)}
            streaming, prompting = [], []
            for shape in (SPEED_SHAPE, ROWS_SHAPE):
                tensors = pure_tensors(shape, qtype)
                path = write_synthetic_gguf(folder / f"{name}.gguf", shape, tensors, samples)
                timing = _time_model(path, threads, runs=_PROMPT_RUNS)
                path.unlink()
                compute_s = max(timing.decode_s - token_s - shape.layers * layer_s, 1e-6)
                streaming.append((streamed_rows(tensors), streamed_bytes(tensors), compute_s))
                fixed_s = shape.layers * (prompt_layer_s + _attention_s(shape, attention_rate))
                prompting.append((*prompt_work(shape, tensors), max(timing.prompt_s[PROMPT_TOKENS] - fixed_s, 1e-9)))
                if timing.repacked and shape is SPEED_SHAPE:
                    repacked.append(name)
            per_byte, type_row[name] = split_row_cost(streaming[0], streaming[1])
            type_bw[name] = 1 / per_byte
            per_flop, type_prompt_row[name] = split_row_cost(prompting[0], prompting[1])
            type_flops[name] = 1 / per_flop
        report("done", 1.0)
    finally:
        with signals_deferred():  # a second Ctrl-C while the models are removed would leave them behind
            shutil.rmtree(folder, ignore_errors=True)
    stamp = time.strftime("%Y-%m-%d")
    load = max(load_before, _load_average())
    cores = os.cpu_count() or 1
    busy = load > BUSY_LOAD_PER_CORE * cores
    return CPUSpeed(type_bandwidth=type_bw, type_flops=type_flops, token_overhead_s=token_s,
                    layer_overhead_s=layer_s, ram_bandwidth=bandwidth, threads=threads,
                    source=f"measured {stamp} (load {load:.1f} on {cores} CPUs) with {llama_cpp_build()}",
                    repacked_types=tuple(repacked), busy=busy, type_row_s=type_row,
                    type_prompt_row_s=type_prompt_row, attention_flops=attention_rate,
                    prompt_layer_overhead_s=prompt_layer_s)


def _load_average() -> float:
    """The 1-minute load average (0 where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0
