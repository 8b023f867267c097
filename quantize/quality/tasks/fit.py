"""How many sequences of a context fit in memory with a model, by the planner's memory model (before any load)."""

from __future__ import annotations

from pathlib import Path

from localr1.hardware import HardwareProfile
from localr1.plan import NoFitError, Wishes, plan_model


def _fits(path: Path, context: int, hardware: HardwareProfile) -> bool:
    # as the batch solver loads it: an f16 KV cache, no flash attention, on the CPU
    wishes = Wishes(context=context, kv_type="f16", flash_attention=False, gpu_layers=0)
    try:
        plan_model(str(path), hardware, wishes)
    except NoFitError:
        return False
    return True


def fitting_parallel(path: Path, context: int, parallel: int, hardware: HardwareProfile) -> int:
    """The most sequences, up to `parallel`, of `context` tokens each that fit with the model at `path`;
    the planner's NoFitError when not even one does."""
    if not _fits(path, context, hardware):
        plan_model(str(path), hardware, Wishes(context=context, kv_type="f16", flash_attention=False, gpu_layers=0))
    low, high = 1, parallel
    while low < high:
        mid = (low + high + 1) // 2
        if _fits(path, context * mid, hardware):
            low = mid
        else:
            high = mid - 1
    return low
