"""A ctypes mirror of ggml's `struct ggml_tensor` (ggml.h as vendored in llama-cpp-python 0.3.36).

Used by the evaluation callback to read the inputs of matrix multiplications as numpy arrays.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

import llama_cpp
import numpy as np
import numpy.typing as npt

GGML_MAX_DIMS = 4
GGML_MAX_SRC = 10
GGML_MAX_OP_PARAMS = 64
GGML_MAX_NAME = 64
GGML_TYPE_F32 = 0
GGML_TYPE_I32 = 26


class GGMLTensor(ctypes.Structure):
    """`struct ggml_tensor`, field for field."""


GGMLTensor._fields_ = [
    ("type", ctypes.c_int),
    ("buffer", ctypes.c_void_p),
    ("ne", ctypes.c_int64 * GGML_MAX_DIMS),
    ("nb", ctypes.c_size_t * GGML_MAX_DIMS),
    ("op", ctypes.c_int),
    ("op_params", ctypes.c_int32 * (GGML_MAX_OP_PARAMS // 4)),
    ("flags", ctypes.c_int32),
    ("src", ctypes.POINTER(GGMLTensor) * GGML_MAX_SRC),
    ("view_src", ctypes.POINTER(GGMLTensor)),
    ("view_offs", ctypes.c_size_t),
    ("data", ctypes.c_void_p),
    ("name", ctypes.c_char * GGML_MAX_NAME),
    ("extra", ctypes.c_void_p),
    ("padding", ctypes.c_char * 8),
]

# sizeof(struct ggml_tensor) on 64-bit platforms for this ggml version
EXPECTED_SIZE = 336


class GGMLLib:
    """The few ggml functions the callback needs, from llama-cpp-python's libggml-base."""

    def __init__(self) -> None:
        lib_dir = Path(llama_cpp.__file__).parent / "lib"
        candidates = sorted(lib_dir.glob("libggml-base.*")) + sorted(lib_dir.glob("ggml-base.*"))
        if not candidates:
            raise OSError(f"libggml-base not found in {lib_dir}")
        lib = ctypes.CDLL(str(candidates[0]))
        self._op_name = lib.ggml_op_name
        self._op_name.argtypes = [ctypes.c_int]
        self._op_name.restype = ctypes.c_char_p
        self.tensor_get = lib.ggml_backend_tensor_get
        self.tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
        self.tensor_get.restype = None
        self.nbytes = lib.ggml_nbytes
        self.nbytes.argtypes = [ctypes.c_void_p]
        self.nbytes.restype = ctypes.c_size_t
        self.buffer_is_host = lib.ggml_backend_buffer_is_host
        self.buffer_is_host.argtypes = [ctypes.c_void_p]
        self.buffer_is_host.restype = ctypes.c_bool
        self.version = _string_fn(lib, "ggml_version")
        self.commit = _string_fn(lib, "ggml_commit")
        self._op_names: dict[int, str] = {}

    def op_name(self, op: int) -> str:
        """ggml's name for an op, e.g. MUL_MAT (cached)."""
        name = self._op_names.get(op)
        if name is None:
            name = self._op_names[op] = (self._op_name(op) or b"").decode()
        return name

    def as_array(self, tensor: GGMLTensor, dtype: type[np.generic]) -> npt.NDArray[np.generic]:
        """A copy of a tensor's data as a numpy array in ggml's dim order reversed (ne[3], ..., ne[0])."""
        itemsize = np.dtype(dtype).itemsize
        n_bytes = int(self.nbytes(ctypes.addressof(tensor)))
        raw = np.empty(n_bytes, dtype=np.uint8)
        if tensor.buffer and self.buffer_is_host(tensor.buffer) and tensor.data:
            ctypes.memmove(raw.ctypes.data, tensor.data, n_bytes)
        else:
            self.tensor_get(ctypes.addressof(tensor), raw.ctypes.data, 0, n_bytes)
        shape = tuple(int(tensor.ne[i]) for i in reversed(range(GGML_MAX_DIMS)))
        strides = tuple(int(tensor.nb[i]) for i in reversed(range(GGML_MAX_DIMS)))
        if strides[-1] != itemsize:
            raise ValueError(f"tensor {tensor.name!r} is not contiguous in its rows")
        usable = raw[: n_bytes - n_bytes % itemsize].view(dtype)
        view = np.lib.stride_tricks.as_strided(usable, shape=shape, strides=strides, writeable=False)
        return np.array(view, copy=True)


def _string_fn(lib: ctypes.CDLL, name: str) -> str:
    try:
        fn = getattr(lib, name)
    except AttributeError:
        return "unknown"
    fn.argtypes = []
    fn.restype = ctypes.c_char_p
    value: bytes | None = fn()
    return value.decode() if value else "unknown"


@cache
def ggml() -> GGMLLib:
    """The loaded ggml library (once per process)."""
    if ctypes.sizeof(GGMLTensor) != EXPECTED_SIZE:
        raise OSError(f"struct ggml_tensor mirror is {ctypes.sizeof(GGMLTensor)} bytes, expected {EXPECTED_SIZE}")
    return GGMLLib()


def tensor_name(tensor: GGMLTensor) -> str:
    """A weight's name without backend decorations (`CUDA0#blk.0.attn_k.weight#0` → `blk.0.attn_k.weight`)."""
    name = bytes(tensor.name).decode("utf-8", errors="replace")
    if "#" in name:
        name = name.split("#")[1]
    return name
