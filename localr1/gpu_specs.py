"""Memory bandwidth and compute of GPUs by name: what the speed model needs for a device holding layers.

Bandwidths are the vendors' published peak figures (GB/s); decode reaches about 70-80% of them in
llama.cpp, so the speed model multiplies by EFFICIENCY. FLOPS are dense FP16 tensor throughput
(TFLOPS, without sparsity); prompt processing reaches a fraction of that (PROMPT_EFFICIENCY). A GPU not in
the table gets its vendor's conservative default, and the plan says the figure is a default.
"""

from __future__ import annotations

from dataclasses import dataclass

EFFICIENCY = 0.75
PROMPT_EFFICIENCY = 0.35


@dataclass(frozen=True)
class GPUSpec:
    """Peak memory bandwidth (bytes/s) and dense FP16 compute (FLOP/s)."""

    bandwidth: float
    flops: float
    known: bool = True


# substring of the name (lower case) -> (GB/s, FP16 TFLOPS); the longest matching key wins
_TABLE: dict[str, tuple[float, float]] = {
    "rtx 5090": (1792, 210), "rtx 5080": (960, 113), "rtx 5070 ti": (896, 88), "rtx 5070": (672, 62),
    "rtx 4090": (1008, 165), "rtx 4080": (717, 97), "rtx 4070 ti": (504, 80), "rtx 4070": (504, 58),
    "rtx 4060 ti": (288, 44), "rtx 4060": (272, 30),
    "rtx 3090 ti": (1008, 80), "rtx 3090": (936, 71), "rtx 3080 ti": (912, 68), "rtx 3080": (760, 60),
    "rtx 3070": (448, 40), "rtx 3060 ti": (448, 32), "rtx 3060": (360, 25),
    "rtx 2080 ti": (616, 54), "rtx 2080": (448, 40), "rtx 2070": (448, 30), "rtx 2060": (336, 26),
    "gtx 1080 ti": (484, 11), "gtx 1080": (320, 9), "gtx 1070": (256, 6.5),
    "rtx a6000": (768, 155), "rtx 6000 ada": (960, 182), "a100": (1935, 312), "h100": (3350, 989),
    "h200": (4800, 989), "l40s": (864, 362), "l4": (300, 121), "t4": (320, 65), "v100": (900, 125),
    "rx 7900 xtx": (960, 123), "rx 7900 xt": (800, 103), "rx 7800 xt": (624, 75), "rx 7600": (288, 43),
    "rx 6900 xt": (512, 46), "rx 6800 xt": (512, 41), "rx 6700 xt": (384, 26),
    "apple m1 ultra": (800, 42), "apple m1 max": (400, 21), "apple m1 pro": (200, 10), "apple m1": (68, 5),
    "apple m2 ultra": (800, 54), "apple m2 max": (400, 27), "apple m2 pro": (200, 14), "apple m2": (100, 7),
    "apple m3 ultra": (819, 56), "apple m3 max": (400, 28), "apple m3 pro": (150, 14), "apple m3": (100, 7),
    "apple m4 max": (546, 34), "apple m4 pro": (273, 17), "apple m4": (120, 9),
}
_DEFAULTS: dict[str, tuple[float, float]] = {"nvidia": (300, 20), "amd": (300, 20), "apple": (100, 7)}
_FALLBACK = (200.0, 10.0)


def gpu_spec(name: str, vendor: str) -> GPUSpec:
    """The table's figures for a GPU name, or the vendor's conservative default (known=False)."""
    lowered = " ".join(name.lower().replace("geforce", "").split())
    matches = [key for key in _TABLE if key in lowered]
    if matches:
        gbs, tflops = _TABLE[max(matches, key=len)]
        return GPUSpec(gbs * 1e9, tflops * 1e12)
    gbs, tflops = _DEFAULTS.get(vendor, _FALLBACK)
    return GPUSpec(gbs * 1e9, tflops * 1e12, known=False)
