"""Process memory (psutil) and, when layers are offloaded, GPU memory (nvidia-smi)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class MemoryReading:
    """Bytes of RAM the process holds, and GPU memory in use when known."""

    rss_bytes: int
    gpu_bytes: int | None


def _gpu_bytes() -> int | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=2, check=True).stdout
        return int(sum(float(x) for x in out.split()) * 2**20)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


class SystemMonitor:
    """Reads memory figures for the status bar."""

    def __init__(self) -> None:
        self._process = psutil.Process()

    def read(self, gpu_offload: bool) -> MemoryReading:
        """Current RSS, and GPU memory only when the model uses the GPU."""
        return MemoryReading(self._process.memory_info().rss, _gpu_bytes() if gpu_offload else None)
