"""SIMD conversion kernels of the ggml library that llama-cpp-python ships, called through ctypes.

numpy's float32 -> float16 cast is scalar code; ggml's uses F16C/AVX-512 and gives the same bits
(round to nearest even). The library is found next to the llama_cpp package without importing it.
When it is missing, `available()` is False and quantize.convert.dtypes uses its numpy kernels; tests check
that both paths agree bit for bit.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

DISABLE_ENV = "LOCALR1_NO_GGML_KERNELS"
BLOCK = 1 << 15  # elements per call: the float32 scratch stays in L2 cache
GGML_TYPE_Q8_0 = 8
_NAMES = {"base": ("libggml-base.so", "libggml-base.dylib", "ggml-base.dll"),
          "cpu": ("libggml-cpu.so", "libggml-cpu.dylib", "ggml-cpu.dll")}
_PTR, _I64 = ctypes.c_void_p, ctypes.c_int64


@dataclass(frozen=True)
class _Kernels:
    bf16_to_f32: Callable[..., Any]
    f32_to_f16: Callable[..., Any]
    quantize_chunk: Callable[..., Any]


def _lib_dir() -> Path | None:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


def _load(directory: Path, kind: str) -> ctypes.CDLL | None:
    for name in _NAMES[kind]:
        if (directory / name).exists():
            return ctypes.CDLL(str(directory / name))
    return None


def _fn(lib: ctypes.CDLL, name: str, argtypes: list[type], restype: type | None) -> Callable[..., Any]:
    fn = getattr(lib, name)
    fn.argtypes = argtypes
    fn.restype = restype
    typed: Callable[..., Any] = fn
    return typed


@cache
def _kernels() -> _Kernels | None:
    if os.environ.get(DISABLE_ENV):
        return None
    directory = _lib_dir()
    if directory is None:
        return None
    try:
        base, cpu = _load(directory, "base"), _load(directory, "cpu")
        if base is None or cpu is None:
            return None
        _fn(cpu, "ggml_cpu_init", [], None)()
        return _Kernels(
            bf16_to_f32=_fn(cpu, "ggml_cpu_bf16_to_fp32", [_PTR, _PTR, _I64], None),
            f32_to_f16=_fn(cpu, "ggml_cpu_fp32_to_fp16", [_PTR, _PTR, _I64], None),
            quantize_chunk=_fn(base, "ggml_quantize_chunk", [ctypes.c_int, _PTR, _PTR, _I64, _I64, _I64, _PTR],
                               ctypes.c_size_t),
        )
    except (OSError, AttributeError):
        return None


def available() -> bool:
    """True when ggml's kernels were found (and not disabled by LOCALR1_NO_GGML_KERNELS)."""
    return _kernels() is not None


def _check_out(out: npt.NDArray[np.uint16], size: int) -> None:
    """The C kernels write `size` halves at out's address: refuse anything that would overflow it."""
    if out.dtype != np.uint16 or not out.flags.c_contiguous or out.size < size:
        raise ValueError(f"output buffer must be contiguous uint16 with at least {size} items")


def bf16_to_f16(src: npt.NDArray[np.uint16], out: npt.NDArray[np.uint16]) -> None:
    """bfloat16 bits -> float16 bits through a float32 scratch block (contiguous arrays)."""
    k = _kernels()
    assert k is not None, "ggml kernels are not available"
    src = np.ascontiguousarray(src).reshape(-1)
    _check_out(out, src.size)
    out = out.reshape(-1)
    scratch = np.empty(min(BLOCK, src.size), dtype=np.float32)
    sp, op, tp = src.ctypes.data, out.ctypes.data, scratch.ctypes.data
    for begin in range(0, src.size, BLOCK):
        n = min(BLOCK, src.size - begin)
        k.bf16_to_f32(sp + 2 * begin, tp, n)
        k.f32_to_f16(tp, op + 2 * begin, n)


def f32_to_f16(src: npt.NDArray[np.float32], out: npt.NDArray[np.uint16]) -> None:
    """float32 -> float16 bits (contiguous arrays)."""
    k = _kernels()
    assert k is not None, "ggml kernels are not available"
    src = np.ascontiguousarray(src, dtype=np.float32).reshape(-1)
    _check_out(out, src.size)
    k.f32_to_f16(src.ctypes.data, out.ctypes.data, src.size)


def quantize_q8_0(rows: npt.NDArray[np.float32], out: npt.NDArray[np.uint8]) -> int:
    """Quantize float32 rows (n_per_row a multiple of 32) to Q8_0 into `out`; returns bytes written."""
    k = _kernels()
    assert k is not None, "ggml kernels are not available"
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    n_rows, n_per_row = rows.shape
    if n_per_row % 32 or out.nbytes < n_rows * n_per_row // 32 * 34:
        raise ValueError("Q8_0 needs rows of whole 32-value blocks and 34 output bytes per block")
    written: int = k.quantize_chunk(GGML_TYPE_Q8_0, rows.ctypes.data, out.ctypes.data, 0, n_rows, n_per_row, None)
    return written
