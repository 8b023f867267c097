"""llama.cpp's log while a model loads: the only place that says a load failed for lack of memory."""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator

import llama_cpp

# Lines llama.cpp (and its CUDA, Metal and Vulkan backends) log when an allocation fails.
MEMORY_MARKERS = ("insufficient memory", "failed to allocate", "out of memory", "unable to allocate",
                  "cannot allocate", "cudamalloc failed", "not enough memory")


@contextlib.contextmanager
def captured_log() -> Iterator[list[str]]:
    """Collect llama.cpp's log lines while the block runs, passing each on to the logger set before (the
    bindings' default, or a caller's own), which is put back afterwards."""
    previous = llama_cpp.llama_log_callback()
    previous_data = ctypes.c_void_p()
    llama_cpp.llama_log_get(ctypes.byref(previous), ctypes.byref(previous_data))
    lines: list[str] = []

    def callback(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        with contextlib.suppress(Exception):
            lines.append(text.decode("utf-8", errors="replace"))
            if previous:
                previous(level, text, previous_data)

    c_callback = llama_cpp.llama_log_callback(callback)  # referenced until the previous logger is back
    llama_cpp.llama_log_set(c_callback, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        llama_cpp.llama_log_set(previous, previous_data)


def memory_failure(lines: list[str]) -> str | None:
    """The first log line that reports a failed allocation, or None."""
    for line in lines:
        if any(marker in line.lower() for marker in MEMORY_MARKERS):
            return " ".join(line.split())
    return None
