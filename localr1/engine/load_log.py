"""llama.cpp's log while a model loads: the only place that says a load failed for lack of memory."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from localr1.engine.llama_log import routed_llama_log

# Lines llama.cpp (and its CUDA, Metal and Vulkan backends) log when an allocation fails.
MEMORY_MARKERS = ("insufficient memory", "failed to allocate", "out of memory", "unable to allocate",
                  "cannot allocate", "cudamalloc failed", "not enough memory")


@contextlib.contextmanager
def captured_log(*, chain: bool = True) -> Iterator[list[str]]:
    """Collect llama.cpp's log pieces while the block runs, passing each on to the logger set before (the
    bindings' default, or a caller's own) with `chain`; that logger is put back afterwards."""
    lines: list[str] = []
    with routed_llama_log(lambda _level, text: lines.append(text.decode("utf-8", errors="replace")), chain=chain):
        yield lines


def memory_failure(lines: list[str]) -> str | None:
    """The first log line that reports a failed allocation, or None."""
    for line in lines:
        if any(marker in line.lower() for marker in MEMORY_MARKERS):
            return " ".join(line.split())
    return None
