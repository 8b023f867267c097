"""Explicit load and sampling parameters: nothing hidden in llama.cpp's defaults."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

KVCacheType = Literal["f16", "q8_0", "q4_0", "f32", "bf16"]


def default_threads() -> int:
    """Physical cores when known: llama.cpp decode does not gain from hyperthreads."""
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil is a dependency
        physical = None
    return max(1, physical or os.cpu_count() or 1)


@dataclass(frozen=True)
class LoadParams:
    """Everything that decides how a model is loaded."""

    context_size: int = 4096
    threads: int = 0  # 0: default_threads()
    batch_threads: int = 0  # 0: same as threads
    gpu_layers: int = 0
    kv_cache_type: KVCacheType = "f16"
    flash_attention: bool = False
    use_mmap: bool = True
    use_mlock: bool = False  # lock the weights in RAM (needs RLIMIT_MEMLOCK of the model's size)
    batch_size: int = 512
    seed: int = 0
    # RPC workers ("host:port") that hold layers; gpu_layers counts the layers off this machine's CPU, and
    # tensor_split gives each worker's share (then each local GPU's), in that order.
    workers: tuple[str, ...] = ()
    tensor_split: tuple[float, ...] = ()

    def resolved(self) -> LoadParams:
        """Copy with the automatic values (threads) filled in."""
        threads = self.threads or default_threads()
        return LoadParams(**{**asdict(self), "threads": threads, "batch_threads": self.batch_threads or threads})

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, for display and JSON."""
        return asdict(self)


@dataclass(frozen=True)
class SamplingParams:
    """How tokens are drawn. temperature 0 means greedy."""

    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 0
    min_p: float = 0.0
    repeat_penalty: float = 1.0
    max_tokens: int = 4096
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, for display and JSON."""
        return asdict(self)


@dataclass(frozen=True)
class LoadRequest:
    """How the user asked for a model to be loaded: None (and 0 threads) leave the choice to the planner."""

    quant: str | None = None
    context_size: int | None = None
    kv_cache_type: KVCacheType | None = None
    flash_attention: bool | None = None
    gpu_layers: int | None = None  # -1: all of them
    threads: int = 0
    use_mmap: bool = True
    use_mlock: bool = False
    workers: tuple[str, ...] = ()  # RPC workers ("host:port") lending their memory


@dataclass(frozen=True)
class SpeedPrediction:
    """The planner's steady-state decode speed (weights resident): at the start of an answer and with the
    context full."""

    decode_tps: float
    decode_tps_full: float

    def at_depth(self, depth: int, context: int) -> float:
        """Tokens/s expected with `depth` tokens in a cache of `context` (the KV read grows linearly)."""
        fraction = min(1.0, max(0.0, depth / max(1, context)))
        seconds = 1 / self.decode_tps + fraction * (1 / self.decode_tps_full - 1 / self.decode_tps)
        return 1 / seconds
