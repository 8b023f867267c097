"""A Hugging Face checkpoint folder: config, and the tensors of its (possibly sharded) safetensors files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from quantize.convert.config import ModelConfig, load_config, read_json_object
from quantize.convert.dtypes import to_f32
from quantize.convert.safetensors_io import MappedFile, TensorRef, read_header
from quantize.errors import CheckpointError, UnsafeCheckpointError

INDEX_NAME = "model.safetensors.index.json"
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


@dataclass
class Checkpoint:
    """An opened checkpoint. Tensor data is read through memory maps, one tensor (or rows) at a time."""

    directory: Path
    config: ModelConfig
    tensors: dict[str, TensorRef]
    files: list[Path]
    _maps: dict[Path, MappedFile] = field(default_factory=dict, repr=False)

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mapped(self, ref: TensorRef) -> MappedFile:
        """The memory map of the file holding a tensor (opened on first use)."""
        mapped = self._maps.get(ref.path)
        if mapped is None:
            mapped = self._maps[ref.path] = MappedFile(ref.path)
        return mapped

    def raw(self, name: str) -> npt.NDArray[Any]:
        """A zero-copy view of a tensor in its stored dtype (BF16 as uint16)."""
        ref = self.tensors[name]
        return self.mapped(ref).view(ref)

    def f32(self, name: str, rows: slice | npt.NDArray[np.intp] | None = None) -> npt.NDArray[np.float32]:
        """A float32 copy of a tensor, or of some of its rows, then its pages are dropped."""
        ref = self.tensors[name]
        view = self.raw(name)
        out = to_f32(view if rows is None else view[rows], ref.dtype)
        del view
        self.release(name)
        return out

    def release(self, name: str) -> None:
        """Drop a tensor's mapped pages from this process."""
        ref = self.tensors[name]
        self.mapped(ref).release(ref.start, ref.nbytes)

    def close(self) -> None:
        """Unmap every file."""
        for mapped in self._maps.values():
            mapped.close()
        self._maps.clear()


def _refuse_pickles(directory: Path) -> None:
    pickles = sorted(p.name for pattern in PICKLE_PATTERNS for p in directory.glob(pattern))
    if pickles:
        raise UnsafeCheckpointError(
            f"{directory} holds only pickle weights ({', '.join(pickles[:3])}); pickle files can run "
            "arbitrary code when loaded, so localr1 reads only safetensors: download the model's "
            "*.safetensors files instead"
        )
    raise CheckpointError(f"no *.safetensors weights in {directory} (is this a Hugging Face model folder?)")


def _merge_headers(files: list[Path]) -> dict[str, TensorRef]:
    tensors: dict[str, TensorRef] = {}
    for path in files:
        for name, ref in read_header(path).items():
            other = tensors.get(name)
            if other is not None:
                raise CheckpointError(
                    f"tensor '{name}' is in two shards, {other.path.name} and {path.name}; "
                    "the checkpoint is inconsistent, download it again"
                )
            tensors[name] = ref
    return tensors


def _indexed_files(directory: Path) -> tuple[list[Path], dict[str, str]]:
    index = read_json_object(directory / INDEX_NAME)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{INDEX_NAME} has no valid 'weight_map' object")
    files: list[Path] = []
    for shard in sorted(set(weight_map.values())):
        path = directory / shard
        if Path(shard).name != shard:
            raise CheckpointError(f"{INDEX_NAME} names a shard outside the folder: {shard}")
        if not path.is_file():
            raise CheckpointError(
                f"{INDEX_NAME} points to shard {shard}, which is missing from {directory}; download it again"
            )
        files.append(path)
    return files, weight_map


def _check_index(tensors: dict[str, TensorRef], weight_map: dict[str, str]) -> None:
    for name, shard in weight_map.items():
        ref = tensors.get(name)
        if ref is None:
            raise CheckpointError(f"{INDEX_NAME} lists tensor '{name}' in {shard}, but no shard holds it")
        if ref.path.name != shard:
            raise CheckpointError(
                f"{INDEX_NAME} puts tensor '{name}' in {shard}, but it is in {ref.path.name}"
            )
    unlisted = sorted(set(tensors) - set(weight_map))
    if unlisted:
        raise CheckpointError(
            f"{INDEX_NAME} does not list {len(unlisted)} tensor(s) found in the shards, e.g. '{unlisted[0]}'"
        )


def open_checkpoint(directory: str | Path) -> Checkpoint:
    """Open and check a checkpoint folder: config.json, then every safetensors header."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {directory}")
    config = load_config(directory)
    if (directory / INDEX_NAME).exists():
        files, weight_map = _indexed_files(directory)
        tensors = _merge_headers(files)
        _check_index(tensors, weight_map)
    else:
        files = sorted(directory.glob("*.safetensors"))
        if not files:
            _refuse_pickles(directory)
        tensors = _merge_headers(files)
    if not tensors:
        raise CheckpointError(f"the safetensors files in {directory} hold no tensors")
    order = {path: i for i, path in enumerate(files)}
    ordered = dict(sorted(tensors.items(), key=lambda item: (order[item[1].path], item[1].start)))
    return Checkpoint(directory, config, ordered, files)
