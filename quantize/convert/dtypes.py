"""Chunk conversions between source dtypes (BF16/F16/F32) and GGUF output types, into reusable buffers.

BF16 -> F16 is the hot path of every conversion: numpy's float32 -> float16 cast is scalar code,
so it is done with 16-bit integer arithmetic instead (exact for every value in F16's normal range),
falling back to numpy's cast only for the few elements outside it.
"""

from __future__ import annotations

from typing import Any

import gguf
import numpy as np
import numpy.typing as npt
from gguf import GGMLQuantizationType as QType

from quantize.convert import fastcast

BLOCK = 1 << 16  # elements per inner step: keeps the integer passes in L2 cache
F16_LIMIT = 29 << 7  # (exponent - 113) << 7 above this: outside F16's normal range

OUT_TYPES: dict[str, QType] = {"f32": QType.F32, "f16": QType.F16, "bf16": QType.BF16, "q8_0": QType.Q8_0}
SOURCE_QTYPES = {"F32": QType.F32, "F16": QType.F16, "BF16": QType.BF16}
FILE_TYPES = {
    QType.F32: gguf.LlamaFileType.ALL_F32,
    QType.F16: gguf.LlamaFileType.MOSTLY_F16,
    QType.BF16: gguf.LlamaFileType.MOSTLY_BF16,
    QType.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0,
}


def type_nbytes(shape: tuple[int, ...], qtype: QType) -> int:
    """Bytes of a tensor of this shape and type."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n = int(np.prod(shape, dtype=np.int64))
    return n // block * size


def bf16_to_f16(src: npt.NDArray[np.uint16], out: npt.NDArray[np.uint16]) -> None:
    """Round bfloat16 bits to float16 bits exactly as a float32 -> float16 cast would."""
    src, out = src.reshape(-1), out.reshape(-1)
    scratch = np.empty(min(BLOCK, src.size), dtype=np.uint16)
    for begin in range(0, src.size, BLOCK):
        s, o = src[begin : begin + BLOCK], out[begin : begin + BLOCK]
        t = scratch[: s.size]
        # normal range: f16 = sign | (exponent - 112) << 10 | mantissa << 3, computed mod 2**16
        np.left_shift(s, 3, out=o)
        np.subtract(o, 0xC000, out=o)
        np.bitwise_and(s, 0x8000, out=t)
        np.bitwise_or(o, t, out=o)
        np.bitwise_and(s, 0x7F80, out=t)
        np.subtract(t, 113 << 7, out=t)
        outside = np.flatnonzero(t > F16_LIMIT)
        if outside.size:
            o[outside] = _slow_bf16_to_f16(s[outside])


def _slow_bf16_to_f16(bits: npt.NDArray[np.uint16]) -> npt.NDArray[np.uint16]:
    with np.errstate(over="ignore"):
        return bf16_bits_to_f32(bits).astype(np.float16).view(np.uint16)


def bf16_bits_to_f32(
    bits: npt.NDArray[np.uint16], out: npt.NDArray[np.uint32] | None = None
) -> npt.NDArray[np.float32]:
    """Widen bfloat16 bits to float32 values (exact)."""
    if out is None:
        out = np.empty(bits.shape, dtype=np.uint32)
    np.left_shift(bits, 16, out=out, dtype=np.uint32)
    return out.view(np.float32)


def to_f32(raw: npt.NDArray[Any], src_dtype: str) -> npt.NDArray[np.float32]:
    """Float32 values of a raw chunk (a copy)."""
    if src_dtype == "BF16":
        return bf16_bits_to_f32(raw)
    return raw.astype(np.float32)


def convert_chunk(raw: npt.NDArray[Any], src_dtype: str, qtype: QType, out: npt.NDArray[np.uint8]) -> memoryview:
    """Convert a chunk of rows (raw source dtype) to `qtype`, in `out` when possible; returns the bytes."""
    n = raw.size
    fast = fastcast.available()
    if SOURCE_QTYPES[src_dtype] == qtype:
        return np.ascontiguousarray(raw).data.cast("B")
    if qtype == QType.F16:
        dst16 = out[: n * 2].view(np.uint16)
        if src_dtype == "BF16":
            (fastcast.bf16_to_f16 if fast else bf16_to_f16)(raw, dst16)
        elif fast:
            fastcast.f32_to_f16(raw, dst16)
        else:
            with np.errstate(over="ignore"):
                np.copyto(dst16.view(np.float16), raw.reshape(-1), casting="same_kind")
        return out[: n * 2].data
    if qtype == QType.F32:
        dst32 = out[: n * 4].view(np.uint32)
        if src_dtype == "BF16":
            bf16_bits_to_f32(raw.reshape(-1), dst32)
        else:
            np.copyto(dst32.view(np.float32), raw.reshape(-1))
        return out[: n * 4].data
    values = to_f32(raw, src_dtype).reshape(raw.shape)
    if qtype == QType.Q8_0 and fast and values.ndim == 2:
        written = fastcast.quantize_q8_0(values, out)
        return out[:written].data
    quantized = np.ascontiguousarray(gguf.quants.quantize(values, qtype)).view(np.uint8).reshape(-1)
    return quantized.data
