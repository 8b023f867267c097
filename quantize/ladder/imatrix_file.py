"""Importance matrices on disk, in llama.cpp's GGUF imatrix format (`NAME.in_sum2` and `NAME.counts` tensors).

Files written here load in llama.cpp's own `llama-quantize --imatrix`, and files from `llama-imatrix` load here.
"""

from __future__ import annotations

import os
from pathlib import Path

import gguf
import numpy as np

from localr1.oserrors import os_errors
from quantize.errors import ImatrixError
from quantize.ladder.imatrix import Imatrix, ImatrixEntry

SUM_SUFFIX = ".in_sum2"
COUNT_SUFFIX = ".counts"


def save_imatrix(imatrix: Imatrix, path: Path) -> None:
    """Write atomically: a temporary file of this process in the same folder, renamed when complete (and removed
    on failure: an OSError, a full disk, is a one-line error)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(str(partial), arch="imatrix")
    writer.add_string("general.type", "imatrix")
    writer.add_array("imatrix.datasets", imatrix.datasets or ["localr1"])
    writer.add_uint32("imatrix.chunk_count", imatrix.chunks)
    writer.add_uint32("imatrix.chunk_size", imatrix.chunk_size)
    writer.add_uint32("localr1.imatrix.tokens", imatrix.tokens)
    for name in sorted(imatrix.entries):
        entry = imatrix.entries[name]
        writer.add_tensor(name + SUM_SUFFIX, entry.sums.astype(np.float32))
        writer.add_tensor(name + COUNT_SUFFIX, entry.counts.astype(np.float32).reshape(-1, 1))
    try:
        with os_errors("write", path):
            try:
                writer.write_header_to_file()
                writer.write_kv_data_to_file()
                writer.write_tensors_to_file()
            finally:
                writer.close()
            os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _field_value(reader: gguf.GGUFReader, key: str) -> object:
    field = reader.get_field(key)
    return None if field is None else field.contents()


def load_imatrix(path: Path) -> Imatrix:
    """Read an importance matrix written by localr1 or by llama.cpp's llama-imatrix (GGUF format)."""
    if not path.is_file():
        raise ImatrixError(f"importance matrix not found: {path}")
    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError, IndexError) as exc:
        raise ImatrixError(f"{path} is not a GGUF importance matrix ({exc}); compute a new one") from None
    tensors = {t.name: np.asarray(t.data, dtype=np.float32) for t in reader.tensors}
    imatrix = Imatrix()
    for key, data in tensors.items():
        if not key.endswith(SUM_SUFFIX):
            continue
        name = key.removesuffix(SUM_SUFFIX)
        counts = tensors.get(name + COUNT_SUFFIX)
        if counts is None:
            raise ImatrixError(f"{path}: {name} has sums but no counts (a damaged importance matrix)")
        n_mat = counts.size
        sums = data.reshape(n_mat, -1).astype(np.float64)
        imatrix.entries[name] = ImatrixEntry(sums, np.rint(counts.reshape(-1)).astype(np.int64))
    if not imatrix.entries:
        raise ImatrixError(f"{path} holds no importance-matrix entries (is it a model file?)")
    for key, attr in (("imatrix.chunk_count", "chunks"), ("imatrix.chunk_size", "chunk_size"),
                      ("localr1.imatrix.tokens", "tokens")):
        value = _field_value(reader, key)
        if isinstance(value, int):
            setattr(imatrix, attr, value)
    datasets = _field_value(reader, "imatrix.datasets")
    if isinstance(datasets, list):
        imatrix.datasets = [str(d) for d in datasets]
    imatrix.check_finite()
    return imatrix
