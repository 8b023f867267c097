"""Importance matrix: per-column mean squared activations at the input of every matrix multiplication.

Collected in-process through llama.cpp's evaluation callback (`cb_eval`) while the model reads calibration
text, then handed to `llama_model_quantize` as an array of `llama_model_imatrix_data`.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp
import numpy as np
import numpy.typing as npt

from quantize.errors import ImatrixError
from quantize.ladder.ggml_tensor import GGML_TYPE_F32, GGML_TYPE_I32, GGMLTensor, ggml, tensor_name

F64Array = npt.NDArray[np.float64]
ProgressFn = Callable[[int, int], None]  # (tokens done, tokens total)


@dataclass
class ImatrixEntry:
    """Sums of squared activations per column (one row per expert/matrix) and the number of rows seen."""

    sums: F64Array  # shape (n_mat, n_cols)
    counts: npt.NDArray[np.int64]  # shape (n_mat,)

    def means(self) -> npt.NDArray[np.float32]:
        """Mean of squares per column, flattened as llama.cpp expects; matrices never reached get 1.
        Computed from float32 sums, as stored on disk, so a matrix hashes the same before and after saving."""
        sums = self.sums.astype(np.float32)
        out = np.ones_like(sums)
        seen = self.counts > 0
        out[seen] = sums[seen] / self.counts[seen, None].astype(np.float32)
        return out.ravel()


@dataclass
class Imatrix:
    """An importance matrix keyed by weight name (e.g. `blk.0.attn_q.weight`)."""

    entries: dict[str, ImatrixEntry] = field(default_factory=dict)
    tokens: int = 0
    chunks: int = 0
    chunk_size: int = 0
    datasets: list[str] = field(default_factory=list)

    def sha256(self) -> str:
        """A hash of what the quantizer receives: names and mean squares, in name order."""
        digest = hashlib.sha256()
        for name in sorted(self.entries):
            digest.update(name.encode() + b"\0")
            digest.update(self.entries[name].means().tobytes())
        return digest.hexdigest()

    def _entry(self, name: str, n_mat: int, n_cols: int) -> ImatrixEntry:
        entry = self.entries.get(name)
        if entry is None:
            entry = self.entries[name] = ImatrixEntry(np.zeros((n_mat, n_cols)), np.zeros(n_mat, dtype=np.int64))
        elif entry.sums.shape != (n_mat, n_cols):
            raise ImatrixError(f"inconsistent activation shape for {name}: {entry.sums.shape} vs {(n_mat, n_cols)}")
        return entry

    def add_dense(self, name: str, x: npt.NDArray[np.float32], weight_mats: tuple[int, int] = (1, 1)) -> None:
        """Accumulate the input of a MUL_MAT; x has ggml's dims reversed (ne3, ne2, rows, cols).
        weight_mats is (ne2, ne3) of the weight: activations of batch i2/i3 map to matrix (i3%ne3)*ne2+(i2%ne2)."""
        x4 = x.reshape((1,) * (4 - x.ndim) + x.shape).astype(np.float64)
        n2, n3 = weight_mats
        entry = self._entry(name, n2 * n3, x4.shape[-1])
        squares = np.einsum("abrc,abrc->abc", x4, x4)  # sum over rows
        for i3 in range(x4.shape[0]):
            for i2 in range(x4.shape[1]):
                entry.sums[(i3 % n3) * n2 + (i2 % n2)] += squares[i3, i2]
        entry.counts += x4.shape[0] * x4.shape[1] * x4.shape[2] // (n2 * n3)

    def add_experts(self, name: str, x: npt.NDArray[np.float32], ids: npt.NDArray[np.int32], n_expert: int) -> None:
        """Accumulate the input of a MUL_MAT_ID: x is (tokens, n_used or 1, cols), ids is (tokens, n_used)."""
        x3: F64Array = np.asarray(x, dtype=np.float64).reshape(tuple(x.shape[-3:]))
        entry = self._entry(name, n_expert, x3.shape[-1])
        n_used = ids.shape[1]
        picked = x3[:, np.arange(n_used) % x3.shape[1], :]  # (tokens, n_used, cols)
        experts = ids.reshape(-1)
        if experts.size and (experts.min() < 0 or experts.max() >= n_expert):
            raise ImatrixError(f"expert id out of range in {name}")
        np.add.at(entry.sums, experts, (picked * picked).reshape(-1, x3.shape[-1]))
        entry.counts += np.bincount(experts, minlength=n_expert).astype(np.int64)

    def check_finite(self) -> None:
        """Refuse an importance matrix holding NaN or infinity (llama.cpp would too, with less context)."""
        for name, entry in self.entries.items():
            if not np.all(np.isfinite(entry.sums)):
                raise ImatrixError(
                    f"non-finite activations in {name}: the base model overflows on the calibration text "
                    "(use an F32/BF16 base or other calibration text)"
                )


class ImatrixCollector:
    """The `cb_eval` callback: answers which nodes it wants, then accumulates their inputs."""

    def __init__(self, include_output: bool = False) -> None:
        self.imatrix = Imatrix()
        self.include_output = include_output
        self.errors: list[str] = []
        self._lib = ggml()

    def wants(self, name: str) -> bool:
        """Weights whose inputs are collected: every block's matrices, and optionally the output head."""
        return name.startswith("blk.") or (self.include_output and name == "output.weight")

    def __call__(self, address: int, ask: bool, _user_data: int) -> bool:
        try:
            return self._handle(GGMLTensor.from_address(address), ask)
        except Exception as exc:  # never let an exception cross back into C
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return True

    def _handle(self, node: GGMLTensor, ask: bool) -> bool:
        op = self._lib.op_name(node.op)
        if op not in ("MUL_MAT", "MUL_MAT_ID"):
            return not ask
        weight, activations = node.src[0].contents, node.src[1].contents
        name = tensor_name(weight)
        if ask:
            return activations.type == GGML_TYPE_F32 and (op == "MUL_MAT_ID" or self.wants(name))
        x = self._lib.as_array(activations, np.float32)
        if op == "MUL_MAT":
            self.imatrix.add_dense(name, x, (int(weight.ne[2]), int(weight.ne[3])))  # type: ignore[arg-type]
        else:
            ids_tensor = node.src[2].contents
            if ids_tensor.type != GGML_TYPE_I32:
                raise ImatrixError(f"unexpected expert id type for {name}")
            ids = self._lib.as_array(ids_tensor, np.int32)
            self.imatrix.add_experts(name, x.reshape(x.shape[-3:]), ids.reshape(ids.shape[-2:]),  # type: ignore[arg-type]
                                     int(weight.ne[2]))
        return True


def collect_imatrix(
    model_path: Path,
    sequences: Sequence[list[int]],
    *,
    threads: int = 0,
    n_ctx: int = 512,
    progress: ProgressFn | None = None,
    dataset: str = "",
) -> Imatrix:
    """Run the model over token sequences (each at most n_ctx) and return the importance matrix."""
    from quantize.runner import Runner

    collector = ImatrixCollector()
    total = sum(len(s) for s in sequences)
    done = 0
    with Runner(model_path, n_ctx=n_ctx, threads=threads, eval_callback=collector) as runner:
        for tokens in sequences:
            runner.run(tokens)
            done += len(tokens)
            if progress is not None:
                progress(done, total)
    if collector.errors:
        raise ImatrixError(f"collecting the importance matrix failed: {collector.errors[0]}")
    imatrix = collector.imatrix
    if not imatrix.entries:
        raise ImatrixError(f"no matrix multiplication inputs were seen while reading {model_path.name}")
    imatrix.check_finite()
    imatrix.tokens = total
    imatrix.chunks = len(sequences)
    imatrix.chunk_size = n_ctx
    imatrix.datasets = [dataset] if dataset else []
    return imatrix


class ImatrixCArray:
    """The importance matrix as llama.cpp's `llama_model_imatrix_data` array, ended by a null name.
    Keep this object alive for as long as the quantizer may read the pointer."""

    def __init__(self, imatrix: Imatrix) -> None:
        names = sorted(imatrix.entries)
        self._names = [n.encode() for n in names]
        self._data = [np.ascontiguousarray(imatrix.entries[n].means(), dtype=np.float32) for n in names]
        self.array = (llama_cpp.llama_model_imatrix_data * (len(names) + 1))()
        for i, (name, data) in enumerate(zip(self._names, self._data, strict=True)):
            self.array[i].name = name
            self.array[i].data = data.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            self.array[i].size = data.size
        self.array[len(names)].name = None

    @property
    def pointer(self) -> ctypes._Pointer[llama_cpp.llama_model_imatrix_data]:
        """What goes into llama_model_quantize_params.imatrix."""
        return ctypes.cast(self.array, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
