"""Fitted constants of llama.cpp's compute buffer (written by benchmarks/fit_compute_buffers.py; do not edit).

The buffer is the peak of three phases of the worst-case graph, each linear in its terms (bytes):
  output    = v_out * outputs * vocab * 4 + h_out * ubatch * hidden * 4
  attention = kq * n_kv * ubatch * heads * 4 (no flash attention) + mask * n_kv * ubatch * mask_bytes
              + h_attn * ubatch * hidden * 4 + kv_attn * ubatch * kv_dim * 4
  ffn       = f_ffn * ubatch * ffn * 4 + h_ffn * ubatch * hidden * 4
"""

from __future__ import annotations

COEFFICIENTS: dict[str, float] = {
    "v_out": 1.0, "h_out": 2.0,
    "kq": 1.0, "mask": 1.0, "h_attn": 5.0, "kv_attn": 2.0,
    "f_ffn": 3.0, "h_ffn": 4.0,
    "const": 0.0,
}
# the formula's largest under-prediction on the fit's grid, added to buffers on GPUs
FRAGMENTATION = 0.125
FIT_SUMMARY = "hand-derived starting point (run benchmarks/fit_compute_buffers.py to refit)"
