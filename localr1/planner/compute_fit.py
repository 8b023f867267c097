"""Fitted constants of llama.cpp's compute buffer (written by benchmarks/fit_compute_buffers.py; do not edit).

The buffer is the peak of three phases of the worst-case graph, each linear in its terms (bytes):
  output    = v_out * outputs * vocab * 4 + h_out * ubatch * hidden * 4
  attention = kq * n_kv * ubatch * heads * 4 (no flash attention) + mask * n_kv * ubatch * mask_bytes
              + h_attn * ubatch * hidden * 4 + kv_attn * ubatch * kv_dim * 4
  ffn       = f_ffn * ubatch * ffn * 4 + h_ffn * ubatch * hidden * 4
"""

from __future__ import annotations

COEFFICIENTS: dict[str, float] = {
    "v_out": 1.004,
    "h_out": 1.921,
    "kq": 1.0,
    "mask": 0.994,
    "h_attn": 4.998,
    "kv_attn": 1.955,
    "f_ffn": 3.469,
    "h_ffn": 1.849,
}
# the formula's largest under-prediction on the fit's grid, added to buffers on GPUs
FRAGMENTATION = 0.112
FIT_SUMMARY = (
    '216 configurations; within 2%: 174; largest under-prediction -37.7 MiB (r1-qwen-14b, ctx 8192, '
    'ubatch 512, q8_0, FA True); largest over-prediction 1.4 MiB; median |error| 0.26 MiB'
)
