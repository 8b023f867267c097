"""A lean GGUF header walker: metadata and tensor infos without per-token numpy objects.

gguf.GGUFReader builds a numpy view for every vocabulary string (about 2 s for 50k tokens);
this reads the same header in tens of milliseconds. Type tables come from the gguf package.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

_SCALARS: dict[int, str] = {
    gguf.GGUFValueType.UINT8: "<B",
    gguf.GGUFValueType.INT8: "<b",
    gguf.GGUFValueType.UINT16: "<H",
    gguf.GGUFValueType.INT16: "<h",
    gguf.GGUFValueType.UINT32: "<I",
    gguf.GGUFValueType.INT32: "<i",
    gguf.GGUFValueType.FLOAT32: "<f",
    gguf.GGUFValueType.BOOL: "<?",
    gguf.GGUFValueType.UINT64: "<Q",
    gguf.GGUFValueType.INT64: "<q",
    gguf.GGUFValueType.FLOAT64: "<d",
}
# Arrays of these are skipped rather than decoded (tokens, merges, scores, types).
_LARGE_ARRAY = 4096
# The vocabulary is kept (as bytes) to name the BOS/EOS tokens; merges are skipped.
_KEPT_STRING_ARRAYS = frozenset({"tokenizer.ggml.tokens"})


class HeaderError(ValueError):
    """The header is cut short or holds an impossible value."""


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor's data lies and how large it is."""

    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int
    n_bytes: int
    n_elements: int


@dataclass(frozen=True)
class GGUFHeader:
    """Metadata values (large arrays left out) and tensor infos."""

    version: int
    metadata: dict[str, Any]
    string_arrays: dict[str, list[bytes]]
    tensors: list[TensorInfo]
    data_start: int
    array_lengths: dict[str, int] = field(default_factory=dict)  # every array's item count, kept or skipped


class _Cursor:
    def __init__(self, buf: mmap.mmap) -> None:
        self.buf, self.pos = buf, 0
        self.lengths: dict[str, int] = {}

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise HeaderError("header ends early")
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string_bytes(self) -> bytes:
        length = self.unpack("<Q")
        if self.pos + length > len(self.buf):
            raise HeaderError("a string runs past the end of the file")
        value = bytes(self.buf[self.pos : self.pos + length])
        self.pos += length
        return value

    def skip_strings(self, count: int) -> None:
        buf, pos, unpack = self.buf, self.pos, struct.unpack_from
        try:
            for _ in range(count):
                pos += 8 + unpack("<Q", buf, pos)[0]
        except struct.error:
            raise HeaderError("a string array runs past the end of the file") from None
        if pos > len(buf):
            raise HeaderError("a string array runs past the end of the file")
        self.pos = pos

    def value(self, type_id: int, key: str, arrays: dict[str, list[bytes]]) -> Any:
        if type_id == gguf.GGUFValueType.STRING:
            return self.string_bytes().decode("utf-8", errors="replace")
        if type_id in _SCALARS:
            return self.unpack(_SCALARS[type_id])
        if type_id != gguf.GGUFValueType.ARRAY:
            raise HeaderError(f"unknown value type {type_id} for key {key}")
        item_type, count = self.unpack("<I"), self.unpack("<Q")
        self.lengths.setdefault(key, count)
        if item_type == gguf.GGUFValueType.STRING:
            if count > _LARGE_ARRAY and key not in _KEPT_STRING_ARRAYS:
                self.skip_strings(count)
                return None
            items = [self.string_bytes() for _ in range(count)]
            if count > _LARGE_ARRAY:
                arrays[key] = items
                return None
            return [item.decode("utf-8", errors="replace") for item in items]
        if item_type in _SCALARS:
            size = struct.calcsize(_SCALARS[item_type])
            if count > _LARGE_ARRAY:
                self.pos += size * count
                if self.pos > len(self.buf):
                    raise HeaderError("an array runs past the end of the file")
                return None
            return [self.unpack(_SCALARS[item_type]) for _ in range(count)]
        return [self.value(item_type, key, arrays) for _ in range(count)]


def _tensor_bytes(type_id: int, shape: tuple[int, ...], name: str) -> tuple[int, int]:
    try:
        block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(type_id)]
    except (ValueError, KeyError):
        raise HeaderError(f"tensor '{name}' has unknown type {type_id}") from None
    elements = 1
    for dim in shape:
        elements *= dim
    return elements, elements // block * type_size


def read_header(path: Path) -> GGUFHeader:
    """Walk a GGUF file's header; raises HeaderError when it is damaged."""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf)
        cur.pos = 4
        version = cur.unpack("<I")
        n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
        if n_tensors > 1_000_000 or n_kv > 1_000_000:
            raise HeaderError("impossible tensor or key count")
        metadata: dict[str, Any] = {}
        arrays: dict[str, list[bytes]] = {}
        for _ in range(n_kv):
            key = cur.string_bytes().decode("utf-8", errors="replace")
            metadata[key] = cur.value(cur.unpack("<I"), key, arrays)
        tensors = []
        for _ in range(n_tensors):
            name = cur.string_bytes().decode("utf-8", errors="replace")
            n_dims = cur.unpack("<I")
            if n_dims > 8:
                raise HeaderError(f"tensor '{name}' claims {n_dims} dimensions")
            shape = tuple(cur.unpack("<Q") for _ in range(n_dims))
            type_id, offset = cur.unpack("<I"), cur.unpack("<Q")
            elements, n_bytes = _tensor_bytes(type_id, shape, name)
            tensors.append(TensorInfo(name, shape, type_id, offset, n_bytes, elements))
        alignment = int(metadata.get("general.alignment") or 32)
        data_start = (cur.pos + alignment - 1) // alignment * alignment
    return GGUFHeader(version, metadata, arrays, tensors, data_start, cur.lengths)
