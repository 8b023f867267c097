"""Helpers to damage synthetic checkpoints in tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import numpy.typing as npt
from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata
from safetensors import TensorSpec, serialize_file

from quantize.convert.safetensors_io import read_header
from tests.fixtures.checkpoints import ST_DTYPES


def rewrite_shard(
    path: Path, drop: tuple[str, ...] = (), add: dict[str, npt.NDArray[np.float32]] | None = None
) -> None:
    """Rewrite a safetensors file without some tensors and/or with extra float32 ones."""
    refs = read_header(path)
    raw = path.read_bytes()
    blobs = {name: np.frombuffer(raw[r.start : r.start + r.nbytes], dtype=np.uint8) for name, r in refs.items()
             if name not in drop}
    specs = {name: TensorSpec(dtype=ST_DTYPES[refs[name].dtype], shape=list(refs[name].shape),
                              data_ptr=blob.ctypes.data, data_len=blob.nbytes) for name, blob in blobs.items()}
    extra = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in (add or {}).items()}
    for name, value in extra.items():
        specs[name] = TensorSpec(dtype="float32", shape=list(value.shape), data_ptr=value.ctypes.data,
                                 data_len=value.nbytes)
    serialize_file(specs, path, {"format": "pt"})


def edit_json(path: Path, **changes: object) -> None:
    """Change top-level keys of a JSON file."""
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def with_chat_template(src: Path, dst: Path, template: str) -> Path:
    """Copy a GGUF with another chat template (the gguf package's own copier)."""
    reader = gguf.GGUFReader(src, "r")
    writer = gguf.GGUFWriter(dst, str(reader.fields["general.architecture"].contents()))
    new: dict[str, Any] = {"tokenizer.chat_template": MetadataDetails(gguf.GGUFValueType.STRING, template)}
    copy_with_new_metadata(reader, writer, new, [])
    return dst
