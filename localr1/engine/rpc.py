"""llama.cpp's RPC backend through ctypes: serve this machine's CPU as a worker, or use workers' devices.

Every RPC call aborts the whole process when the peer is unreachable, is not an RPC server, or goes away
(ggml-rpc.cpp: "Failed to connect", "Remote RPC server crashed or returned malformed response"). So the
CLI never calls these in its own process: `probe` and `serve` run as `python -m localr1.engine.rpc`, and
a model split across workers runs in a child process (localr1/engine/isolated.py).
The Python package `llama_cpp` is not imported here: only its shared libraries are loaded.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import psutil

# ggml-backend.h: struct ggml_backend_device { struct ggml_backend_device_i iface; reg; context; }
# where the interface starts get_name, get_description, get_memory, ...
_GET_MEMORY_SLOT, _INIT_BACKEND_SLOT = 2, 5
_MAX_DEVICE_WORDS = 32
GetMemory = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t))
InitBackend = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)
_SIZE_P = ctypes.POINTER(ctypes.c_size_t)


def lib_dir() -> Path:
    """The folder holding llama-cpp-python's shared libraries, found without importing the package."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        raise OSError("llama-cpp-python is not installed")
    return Path(spec.origin).parent / "lib"


def _load(name: str) -> ctypes.CDLL:
    found = sorted(lib_dir().glob(f"lib{name}.so*")) + sorted(lib_dir().glob(f"lib{name}.dylib"))
    found += sorted(lib_dir().glob(f"{name}.dll"))
    if not found:
        raise OSError(f"lib{name} is not in {lib_dir()}: this llama.cpp build has no RPC backend")
    return ctypes.CDLL(str(found[0]))


@cache
def _libs() -> tuple[ctypes.CDLL, ctypes.CDLL, ctypes.CDLL]:
    """(ggml, ggml-base, ggml-rpc) with the signatures used here (ggml-rpc.h, ggml-backend.h)."""
    ggml, base, rpc = _load("ggml"), _load("ggml-base"), _load("ggml-rpc")
    ggml.ggml_backend_load_all.restype = None
    ggml.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    base.ggml_backend_dev_name.restype = ctypes.c_char_p
    base.ggml_backend_dev_name.argtypes = [ctypes.c_void_p]
    base.ggml_backend_dev_memory.restype = None
    base.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, _SIZE_P, _SIZE_P]
    base.ggml_backend_dev_backend_reg.restype = ctypes.c_void_p
    base.ggml_backend_dev_backend_reg.argtypes = [ctypes.c_void_p]
    ggml.ggml_backend_dev_count.restype = ctypes.c_size_t
    ggml.ggml_backend_dev_get.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    base.ggml_backend_dev_type.restype = ctypes.c_int
    base.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    base.ggml_backend_reg_name.restype = ctypes.c_char_p
    base.ggml_backend_reg_name.argtypes = [ctypes.c_void_p]
    base.ggml_backend_reg_dev_count.restype = ctypes.c_size_t
    base.ggml_backend_reg_dev_count.argtypes = [ctypes.c_void_p]
    base.ggml_backend_reg_dev_get.restype = ctypes.c_void_p
    base.ggml_backend_reg_dev_get.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    rpc.ggml_backend_rpc_start_server.restype = None
    rpc.ggml_backend_rpc_start_server.argtypes = [
        ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
    rpc.ggml_backend_rpc_get_device_memory.restype = None
    rpc.ggml_backend_rpc_get_device_memory.argtypes = [ctypes.c_char_p, ctypes.c_uint32, _SIZE_P, _SIZE_P]
    rpc.ggml_backend_rpc_add_server.restype = ctypes.c_void_p
    rpc.ggml_backend_rpc_add_server.argtypes = [ctypes.c_char_p]
    ggml.ggml_backend_load_all()
    return ggml, base, rpc


def device_memory(endpoint: str) -> tuple[int, int]:
    """(free, total) bytes the worker at `endpoint` lends; aborts the process if it cannot be reached."""
    _, _, rpc = _libs()
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    rpc.ggml_backend_rpc_get_device_memory(endpoint.encode(), 0, ctypes.byref(free), ctypes.byref(total))
    return int(free.value), int(total.value)


_added: dict[str, tuple[int, ...]] = {}


def worker_devices(endpoints: tuple[str, ...]) -> tuple[int, ...]:
    """The ggml devices of these workers, in order (a worker added once stays known to ggml)."""
    _, base, rpc = _libs()
    devices: list[int] = []
    for endpoint in endpoints:
        if endpoint not in _added:
            reg = rpc.ggml_backend_rpc_add_server(endpoint.encode())
            if not reg:
                raise OSError(f"llama.cpp could not add the RPC worker {endpoint}")
            _added[endpoint] = tuple(
                int(base.ggml_backend_reg_dev_get(reg, i)) for i in range(int(base.ggml_backend_reg_dev_count(reg))))
        devices.extend(_added[endpoint])
    return tuple(devices)


def local_gpu_devices() -> tuple[int, ...]:
    """This machine's GPU devices (not RPC ones), in ggml's order: they follow the workers in a load."""
    ggml, base, _ = _libs()
    found = []
    for i in range(int(ggml.ggml_backend_dev_count())):
        dev = ggml.ggml_backend_dev_get(i)
        is_gpu = base.ggml_backend_dev_type(dev) in (1, 3)  # GPU, integrated GPU
        if is_gpu and base.ggml_backend_reg_name(base.ggml_backend_dev_backend_reg(dev)) != b"RPC":
            found.append(int(dev))
    return tuple(found)


class LentDevice:
    """This machine's CPU device as the RPC server shows it: the same device, but reporting the memory the
    worker lends (`--mem`, and never more than the RAM available now) instead of all of RAM as free.

    ggml has no public way to change what a device reports, so the device struct is copied and its
    get_memory slot replaced; the copy is checked (same name, our callback answers) before it is used.
    The server asks the memory of the backend it made from the device, so init_backend is wrapped too:
    the backend it returns is pointed at the copy.
    """

    def __init__(self, device: int, lend_bytes: int | None) -> None:
        _, base, _ = _libs()
        self.lend_bytes = lend_bytes
        self.total = psutil.virtual_memory().total
        reg = base.ggml_backend_dev_backend_reg(device)
        words = (ctypes.c_void_p * _MAX_DEVICE_WORDS).from_buffer_copy(
            ctypes.string_at(device, _MAX_DEVICE_WORDS * ctypes.sizeof(ctypes.c_void_p)))
        reg_slot = next((i for i in range(_GET_MEMORY_SLOT + 1, _MAX_DEVICE_WORDS - 1) if words[i] == reg), None)
        if reg_slot is None:
            raise OSError("unexpected ggml device layout: cannot report the memory lent")
        self._words = (ctypes.c_void_p * (reg_slot + 2))(*words[: reg_slot + 2])  # interface, reg, context
        self._callback = GetMemory(self._get_memory)  # kept alive as long as the device
        self._words[_GET_MEMORY_SLOT] = ctypes.cast(self._callback, ctypes.c_void_p).value
        init = words[_INIT_BACKEND_SLOT]
        if not init:
            raise OSError("unexpected ggml device layout: cannot report the memory lent")
        self._init_original = InitBackend(init)
        self._init_callback = InitBackend(self._init_backend)
        self._words[_INIT_BACKEND_SLOT] = ctypes.cast(self._init_callback, ctypes.c_void_p).value
        self._device = device
        self.pointer = ctypes.addressof(self._words)
        self._asked = False
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        base.ggml_backend_dev_memory(self.pointer, ctypes.byref(free), ctypes.byref(total))
        if not self._asked or base.ggml_backend_dev_name(self.pointer) != base.ggml_backend_dev_name(device):
            raise OSError("unexpected ggml device layout: cannot report the memory lent")

    def memory(self) -> tuple[int, int]:
        """(free, total) as the worker reports them."""
        available = psutil.virtual_memory().available
        if self.lend_bytes is None:
            return available, self.total
        return min(self.lend_bytes, available), self.lend_bytes

    def _init_backend(self, _dev: Any, params: Any) -> Any:
        backend = self._init_original(self._device, params)
        if backend:  # struct ggml_backend { guid; iface; device; context }: find the device field
            fields = (ctypes.c_void_p * _MAX_DEVICE_WORDS).from_address(backend)
            for i in range(1, _MAX_DEVICE_WORDS - 1):
                if fields[i] == self._device:
                    fields[i] = self.pointer
                    break
        return backend

    def _get_memory(self, _dev: Any, free: Any, total: Any) -> None:
        self._asked = True
        free[0], total[0] = self.memory()


def serve(endpoint: str, threads: int, lend_bytes: int | None) -> None:
    """Serve this machine's CPU to RPC clients on `endpoint`; returns only if the server stops."""
    ggml, _, rpc = _libs()
    cpu = ggml.ggml_backend_dev_by_type(0)  # GGML_BACKEND_DEVICE_TYPE_CPU
    if not cpu:
        raise OSError("this llama.cpp build has no CPU device")
    lent = LentDevice(cpu, lend_bytes)
    devices = (ctypes.c_void_p * 1)(lent.pointer)
    rpc.ggml_backend_rpc_start_server(endpoint.encode(), None, threads, 1, devices)


def die_with_parent() -> None:
    """On Linux, have the kernel end this process when the process that started it dies."""
    if sys.platform.startswith("linux"):
        import os
        import signal

        parent = os.getppid()
        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the call
            sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    """`probe ENDPOINT` prints the worker's memory as JSON; `serve ENDPOINT` runs a worker."""
    parser = argparse.ArgumentParser(prog="python -m localr1.engine.rpc")
    sub = parser.add_subparsers(dest="action", required=True)
    probe = sub.add_parser("probe")
    probe.add_argument("endpoint")
    srv = sub.add_parser("serve")
    srv.add_argument("endpoint")
    srv.add_argument("--threads", type=int, default=1)
    srv.add_argument("--mem", type=int, default=None, help="bytes lent")
    args = parser.parse_args(argv)
    if args.action == "serve":
        die_with_parent()
    if args.action == "probe":
        free, total = device_memory(args.endpoint)
        print(json.dumps({"free": free, "total": total}), flush=True)
        return 0
    serve(args.endpoint, args.threads, args.mem)
    return 1


if __name__ == "__main__":
    sys.exit(main())
