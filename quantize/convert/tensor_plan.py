"""Match a checkpoint's tensors to an architecture's map: every source tensor mapped, every shape checked."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from gguf import GGMLQuantizationType as QType

from quantize.convert.arch import Architecture, rope_permutation
from quantize.convert.checkpoint import Checkpoint
from quantize.convert.dtypes import SOURCE_QTYPES, type_nbytes
from quantize.convert.safetensors_io import TensorRef
from quantize.errors import CheckpointError, UnsupportedModelError

Q8_BLOCK = 32


@dataclass(frozen=True)
class TensorJob:
    """One output tensor: its GGUF name, shape (numpy order), type, and where its values come from."""

    name: str
    shape: tuple[int, ...]
    qtype: QType
    nbytes: int
    source: TensorRef | None = None
    row_order: npt.NDArray[np.intp] | None = None
    data: npt.NDArray[np.float32] | None = None
    permute_heads: int = 0

    @property
    def unchanged(self) -> bool:
        """True when the output bytes are the source bytes (same type, no permutation)."""
        return self.source is not None and self.row_order is None and SOURCE_QTYPES[self.source.dtype] == self.qtype

    @property
    def n_elements(self) -> int:
        """Number of values."""
        return int(np.prod(self.shape, dtype=np.int64))


def output_type(shape: tuple[int, ...], outtype: QType) -> QType:
    """Norms, biases and other 1-D tensors stay F32; Q8_0 needs rows that are whole blocks."""
    if len(shape) < 2:
        return QType.F32
    if outtype == QType.Q8_0 and shape[-1] % Q8_BLOCK:
        return QType.F16
    return outtype


def _describe(names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def plan_tensors(checkpoint: Checkpoint, arch: Architecture, outtype: QType) -> list[TensorJob]:
    """The output tensors in write order (generated ones first, then by position in the files)."""
    config = checkpoint.config
    if config.hidden_act != "silu":
        raise UnsupportedModelError(f"config.json uses hidden_act '{config.hidden_act}'; only 'silu' is supported")
    arch.check(config)
    targets = arch.tensor_map(config)
    sources = checkpoint.tensors
    unexpected = [n for n in sources if n not in targets and not arch.is_ignored(n)]
    if unexpected:
        raise CheckpointError(
            f"unexpected tensor(s) {_describe(unexpected)} for {arch.hf_name}; every tensor must be "
            "mapped, so the checkpoint does not match its config.json"
        )
    missing = [n for n in targets if n not in sources]
    if missing:
        raise CheckpointError(f"tensor(s) {_describe(missing)} missing from the checkpoint; download it again")
    jobs = [
        TensorJob(g.name, g.data.shape, QType.F32, g.data.nbytes, data=g.data) for g in arch.generated(config)
    ]
    for name, ref in sources.items():
        if name not in targets:
            continue
        target = targets[name]
        if ref.shape != target.shape:
            raise CheckpointError(
                f"tensor '{name}' has shape {list(ref.shape)} but config.json implies {list(target.shape)} "
                f"(hidden_size {config.hidden_size}, intermediate_size {config.intermediate_size}, "
                f"heads {config.num_attention_heads}/{config.num_key_value_heads}, vocab_size {config.vocab_size})"
            )
        qtype = output_type(ref.shape, outtype)
        order = rope_permutation(ref.shape[0], target.permute_heads) if target.permute_heads else None
        jobs.append(TensorJob(target.name, ref.shape, qtype, type_nbytes(ref.shape, qtype), ref, order,
                              permute_heads=target.permute_heads))
    return jobs
