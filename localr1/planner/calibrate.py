"""Measure this CPU once: decode bytes/s and prompt FLOP/s per ggml tensor type, and a token's fixed costs.

Each type gets two synthetic models made of that type only (weights repeated from a block llama.cpp's own
quantizer made): 4 layers of the 1.5B distill's widths, large enough that decoding streams from RAM, and 4
layers of short rows (width 256) with about as many rows but a seventh of the bytes. Together they separate
the type's bytes/s from its cost per matrix row (a dot product's fixed work, which narrow models pay far more
of per byte). Two tiny models of 2 and 26 layers give the fixed cost per token and per layer.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import gguf
import llama_cpp
import numpy as np

from localr1.engine.devices import llama_cpp_build
from localr1.engine.params import default_threads
from localr1.hardware import CPUSpeed
from localr1.planner.mix import Tensor, tensor_list
from localr1.planner.shape import ModelShape
from localr1.planner.synthetic import write_synthetic_gguf

T = gguf.GGMLQuantizationType
Progress = Callable[[str, float], None]  # (what, fraction done)
LADDER_TYPES = ("F16", "Q8_0", "Q6_K", "Q5_K", "Q4_K", "Q3_K", "Q2_K", "IQ4_XS")
LEGACY_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL")
SPEED_SHAPE = ModelShape("llama", 4, 1536, 8960, 12, 2, 128, 256, 4096)
ROWS_SHAPE = ModelShape("llama", 4, 256, 53760, 8, 2, 32, 256, 4096)  # about SPEED_SHAPE's bytes, 4.7x its rows
TINY_SHAPE = ModelShape("llama", 2, 64, 128, 2, 1, 32, 256, 4096)
BUSY_LOAD_PER_CORE = 0.75  # above this, other processes took a share of the cores while measuring
_DECODE_TOKENS = 16
_PROMPT_TOKENS = 64


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


@contextlib.contextmanager
def _llama_log() -> Iterator[list[str]]:
    """llama.cpp's log lines while the block runs (then its default logger again)."""
    import llama_cpp._logger as default_logger

    lines: list[str] = []

    def callback(_level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        with contextlib.suppress(Exception):
            lines.append(text.decode("utf-8", errors="replace"))

    c_callback = llama_cpp.llama_log_callback(callback)
    llama_cpp.llama_log_set(c_callback, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        llama_cpp.llama_log_set(default_logger.llama_log_callback, ctypes.c_void_p(0))


_REPACK = re.compile(r"CPU_REPACK model buffer size =\s*([\d.]+) MiB")


def _time_model(path: Path, threads: int, prompt_tokens: int) -> tuple[float, float, bool]:
    """Seconds per decoded token (a low quantile: a busy machine only adds time), seconds for one prompt
    batch, and whether llama.cpp repacked the weights at load."""
    with _llama_log() as lines:
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=512, n_batch=max(prompt_tokens, 8), n_threads=threads,
                              n_threads_batch=threads, verbose=False)
    repacked = any((m := _REPACK.search(line)) and float(m.group(1)) > 0 for line in lines)
    try:
        prompt = [3 + i % 200 for i in range(prompt_tokens)]
        llm.eval(prompt[:8])  # warm up: page in, thread pool up
        llm.reset()  # type: ignore[no-untyped-call]
        started = time.perf_counter()
        llm.eval(prompt)
        prompt_s = time.perf_counter() - started
        steps = []
        for i in range(_DECODE_TOKENS):
            started = time.perf_counter()
            llm.eval([5 + i])
            steps.append(time.perf_counter() - started)
        steps.sort()
        return steps[len(steps) // 4], prompt_s, repacked
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
    steps = len(types) + 3
    with tempfile.TemporaryDirectory(prefix="localr1-speed-", dir=workdir) as tmp:
        folder = Path(tmp)
        report("memory bandwidth", 0.0)
        bandwidth = ram_bandwidth()
        timings = []
        for i, layers in enumerate((2, 26)):
            report(f"fixed costs ({layers} layers)", (1 + i) / steps)
            shape = replace(TINY_SHAPE, layers=layers)
            path = write_synthetic_gguf(folder / f"tiny{layers}.gguf", shape, pure_tensors(shape, T.F32), {})
            timings.append(_time_model(path, threads, 8)[0])
            path.unlink()
        layer_s = max(0.0, (timings[1] - timings[0]) / 24)
        token_s = max(0.0, timings[0] - 2 * layer_s)
        type_bw: dict[str, float] = {}
        type_row: dict[str, float] = {}
        type_prompt_row: dict[str, float] = {}
        type_flops: dict[str, float] = {}
        repacked: list[str] = []
        for i, name in enumerate(types):
            report(f"decode speed of {name}", (3 + i) / steps)
            qtype = T.__members__[name]
            samples: dict[T, bytes] = {} if qtype in (T.F32, T.F16, T.BF16) else {qtype: quantized_sample(qtype)}
            streaming, prompting = [], []
            for shape in (SPEED_SHAPE, ROWS_SHAPE):
                tensors = pure_tensors(shape, qtype)
                path = write_synthetic_gguf(folder / f"{name}.gguf", shape, tensors, samples)
                decode_s, prompt_s, was_repacked = _time_model(path, threads, _PROMPT_TOKENS)
                path.unlink()
                compute_s = max(decode_s - token_s - shape.layers * layer_s, 1e-6)
                rows = streamed_rows(tensors)
                streaming.append((rows, streamed_bytes(tensors), compute_s))
                params = sum(t.n_elements for t in tensors if len(t.ne) > 1 and t.name != "token_embd.weight")
                prompting.append((rows, 2 * params, prompt_s / _PROMPT_TOKENS))
                if was_repacked and shape is SPEED_SHAPE:
                    repacked.append(name)
            per_byte, type_row[name] = split_row_cost(streaming[0], streaming[1])
            type_bw[name] = 1 / per_byte
            per_flop, type_prompt_row[name] = split_row_cost(prompting[0], prompting[1])
            type_flops[name] = 1 / per_flop
        report("done", 1.0)
    stamp = time.strftime("%Y-%m-%d")
    load = max(load_before, _load_average())
    cores = os.cpu_count() or 1
    busy = load > BUSY_LOAD_PER_CORE * cores
    return CPUSpeed(type_bandwidth=type_bw, type_flops=type_flops, token_overhead_s=token_s,
                    layer_overhead_s=layer_s, ram_bandwidth=bandwidth, threads=threads,
                    source=f"measured {stamp} (load {load:.1f} on {cores} CPUs) with {llama_cpp_build()}",
                    repacked_types=tuple(repacked), busy=busy, type_row_s=type_row,
                    type_prompt_row_s=type_prompt_row)


def _load_average() -> float:
    """The 1-minute load average (0 where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0
