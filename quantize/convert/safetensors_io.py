"""Safetensors files read without a framework: header parsing, checks, and memory-mapped tensor views.

numpy has no bfloat16, so BF16 tensors are viewed as uint16 and widened to float32 by a 16-bit shift.
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from quantize.errors import CheckpointError

# dtype name in the header -> (numpy dtype of the raw view, bytes per element)
DTYPES: dict[str, tuple[np.dtype[Any], int]] = {
    "BF16": (np.dtype("<u2"), 2),
    "F16": (np.dtype("<f2"), 2),
    "F32": (np.dtype("<f4"), 4),
}
MAX_HEADER_BYTES = 100 * 1024 * 1024
PAGE = mmap.PAGESIZE


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor's bytes live: file, absolute byte offset, dtype and shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    path: Path
    start: int
    nbytes: int

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return DTYPES[self.dtype][1]

    @property
    def n_elements(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def row_bytes(self) -> int:
        """Bytes of one row (the last dimension); the whole tensor for a scalar."""
        return (self.shape[-1] if self.shape else 1) * self.itemsize


def _truncated(path: Path, detail: str) -> CheckpointError:
    return CheckpointError(f"truncated or corrupt safetensors file {path.name}: {detail}; download it again")


def read_header(path: Path) -> dict[str, TensorRef]:
    """Parse and check a safetensors header; every tensor must lie inside the file."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise _truncated(path, f"only {size} bytes")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
            raise _truncated(path, f"header says {header_len} bytes but the file has {size}")
        raw = fh.read(header_len)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _truncated(path, f"header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _truncated(path, "header is not a JSON object")
    data_start = 8 + header_len
    refs: dict[str, TensorRef] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        refs[name] = _tensor_ref(path, name, entry, data_start, size)
    return refs


def _tensor_ref(path: Path, name: str, entry: Any, data_start: int, size: int) -> TensorRef:
    try:
        dtype = str(entry["dtype"])
        shape = tuple(int(d) for d in entry["shape"])
        begin, end = (int(x) for x in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise _truncated(path, f"bad header entry for tensor '{name}'") from None
    if dtype not in DTYPES:
        raise CheckpointError(
            f"tensor '{name}' in {path.name} has dtype {dtype}; supported: {', '.join(DTYPES)}"
        )
    nbytes = math.prod(shape) * DTYPES[dtype][1]
    if any(d < 0 for d in shape) or begin < 0 or end - begin != nbytes:
        raise _truncated(path, f"tensor '{name}' has {end - begin} bytes for shape {list(shape)} {dtype}")
    if data_start + end > size:
        raise _truncated(path, f"tensor '{name}' ends at byte {data_start + end} but the file has {size}")
    return TensorRef(name, dtype, shape, path, data_start + begin, nbytes)


class MappedFile:
    """One safetensors file mapped read-only; views are zero-copy and pages can be dropped after use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        self._map = mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ)

    def view(self, ref: TensorRef) -> npt.NDArray[Any]:
        """The whole tensor as a read-only array of its raw dtype (BF16 as uint16); touches no page."""
        dtype = DTYPES[ref.dtype][0]
        flat = np.frombuffer(self._map, dtype=dtype, count=ref.n_elements, offset=ref.start)
        return flat.reshape(ref.shape)

    def release(self, start: int, nbytes: int) -> None:
        """Drop the mapped pages of a byte range from this process (they stay in the page cache)."""
        if nbytes <= 0 or not hasattr(mmap, "MADV_DONTNEED"):
            return
        first = start - start % PAGE
        self._map.madvise(mmap.MADV_DONTNEED, first, start + nbytes - first)

    def close(self) -> None:
        """Unmap unless arrays still point into the file (then the mapping goes with them)."""
        with contextlib.suppress(BufferError):
            self._map.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)

