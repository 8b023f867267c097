"""Stop llama_decode from another thread: llama.cpp's abort callback, reading a flag we set.

ggml calls the callback after every graph node, from a compute thread. A Python callback
would take the GIL there thousands of times per token (and wait for it while the UI thread
runs), so the callback is C's own `strlen` over a two-byte flag: empty means go on, one
non-zero byte means stop. It returns exactly 0 or 1, which reads the same as a C `bool`.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from collections.abc import Callable
from typing import Any

import llama_cpp

# llama-cpp-python prints llama.cpp's log through this logger; an aborted decode logs a
# warning (its cache entries being removed), which is the expected outcome of a cancel.
_LLAMA_LOGGER = logging.getLogger("llama-cpp-python")


def _native_strlen() -> Any | None:
    """libc's strlen as a C function pointer, or None where it cannot be found."""
    try:
        libc = ctypes.cdll.msvcrt if sys.platform == "win32" else ctypes.CDLL(None)
        return libc.strlen
    except (OSError, AttributeError):
        return None


class AbortSwitch:
    """A flag that makes a context's running and future llama_decode calls return 2 (aborted)."""

    def __init__(self) -> None:
        self._flag = ctypes.create_string_buffer(2)
        self._log_level: int | None = None
        strlen = _native_strlen()
        self._python_check: Callable[[Any], bool] | None = None
        if strlen is not None:
            self._callback = ctypes.cast(strlen, llama_cpp.ggml_abort_callback)
        else:  # pragma: no cover - every supported platform has a C library
            self._python_check = lambda _data: self._flag.raw[0] != 0
            self._callback = llama_cpp.ggml_abort_callback(self._python_check)

    @property
    def is_native(self) -> bool:
        """True when the callback runs without Python (no GIL taken per graph node)."""
        return self._python_check is None

    def attach(self, ctx: llama_cpp.llama_context_p) -> None:
        """Install on a context; this object must outlive it (it holds the callback and the flag)."""
        llama_cpp.llama_set_abort_callback(ctx, self._callback, ctypes.cast(self._flag, ctypes.c_void_p))

    def trip(self) -> None:
        """Abort the decode under way, and every later one until `reset`."""
        if self._log_level is None:
            self._log_level = _LLAMA_LOGGER.level
            _LLAMA_LOGGER.setLevel(logging.CRITICAL)
        self._flag[0] = b"\x01"

    def reset(self) -> None:
        """Let decoding run again."""
        self._flag[0] = b"\x00"
        if self._log_level is not None:
            _LLAMA_LOGGER.setLevel(self._log_level)
            self._log_level = None

    @property
    def tripped(self) -> bool:
        """Whether the flag is set."""
        return self._flag.raw[0] != 0
