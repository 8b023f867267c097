"""The compute devices this llama.cpp build sees (ggml's backend registry), read through ctypes.

`llama_supports_gpu_offload()` also answers yes for an RPC-enabled CPU build, so whether layers can go to
a GPU is decided from the devices ggml lists: a GPU or integrated GPU device means offload works.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import llama_cpp

# ggml-backend.h: enum ggml_backend_dev_type
DEVICE_TYPES = {0: "cpu", 1: "gpu", 2: "accel", 3: "igpu"}


@dataclass(frozen=True)
class BackendDevice:
    """One ggml device: name ("CUDA0", "Metal", "CPU"), description, kind and memory in bytes."""

    name: str
    description: str
    kind: str
    free: int
    total: int


def _lib(name: str) -> ctypes.CDLL:
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    found = sorted(lib_dir.glob(f"lib{name}.*")) + sorted(lib_dir.glob(f"{name}.*"))
    if not found:
        raise OSError(f"{name} not found in {lib_dir}")
    return ctypes.CDLL(str(found[0]))


@cache
def backend_devices() -> tuple[BackendDevice, ...]:
    """Every device of this build; empty when the libraries cannot be inspected."""
    try:
        reg, base = _lib("ggml"), _lib("ggml-base")
    except OSError:
        return ()
    llama_cpp.llama_backend_init()
    reg.ggml_backend_dev_count.restype = ctypes.c_size_t
    reg.ggml_backend_dev_get.restype = ctypes.c_void_p
    reg.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    for fn in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(base, fn).restype = ctypes.c_char_p
        getattr(base, fn).argtypes = [ctypes.c_void_p]
    base.ggml_backend_dev_type.restype = ctypes.c_int
    base.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    size_p = ctypes.POINTER(ctypes.c_size_t)
    base.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, size_p, size_p]
    devices = []
    for i in range(int(reg.ggml_backend_dev_count())):
        dev = reg.ggml_backend_dev_get(i)
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        base.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        devices.append(BackendDevice(
            name=(base.ggml_backend_dev_name(dev) or b"").decode(errors="replace"),
            description=(base.ggml_backend_dev_description(dev) or b"").decode(errors="replace"),
            kind=DEVICE_TYPES.get(int(base.ggml_backend_dev_type(dev)), "other"),
            free=int(free.value), total=int(total.value),
        ))
    return tuple(devices)


def gpu_offload_supported() -> bool:
    """True when this build has a GPU backend with at least one device (CUDA, Metal, Vulkan, ROCm...)."""
    return any(d.kind in ("gpu", "igpu") for d in backend_devices())


def llama_cpp_build() -> str:
    """llama-cpp-python's version and the features of its llama.cpp build (keys the speed cache)."""
    info = llama_cpp.llama_print_system_info()
    features = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
    return f"llama-cpp-python {llama_cpp.__version__}; {' '.join(features.split())}"
