"""Llama (the 8B and 70B distills): q/k rows permuted for llama.cpp's rope, llama3 scaling as rope_freqs."""

from __future__ import annotations

import math

import numpy as np

from quantize.convert.arch.decoder import Architecture, GeneratedTensor
from quantize.convert.config import ModelConfig
from quantize.errors import UnsupportedModelError


def _permuted(config: ModelConfig) -> dict[str, int]:
    return {"attn_q.weight": config.num_attention_heads, "attn_k.weight": config.num_key_value_heads}


def llama3_rope_factors(config: ModelConfig) -> np.ndarray:
    """Per-frequency divisors of llama3 rope scaling, as llama.cpp's `rope_freqs` expects (head_dim/2)."""
    scaling = config.rope_scaling or {}
    factor = float(scaling.get("factor", 8.0))
    low_freq_factor = float(scaling.get("low_freq_factor", 1.0))
    high_freq_factor = float(scaling.get("high_freq_factor", 4.0))
    old_context = float(scaling.get("original_max_position_embeddings", 8192))
    dim = config.head_dim
    freqs = 1.0 / (config.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    low_freq_wavelen = old_context / low_freq_factor
    high_freq_wavelen = old_context / high_freq_factor
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            factors.append(1.0)
        elif wavelen > low_freq_wavelen:
            factors.append(factor)
        else:
            smooth = (old_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            factors.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(factors, dtype=np.float32)


def _generated(config: ModelConfig) -> list[GeneratedTensor]:
    if config.rope_type == "llama3":
        return [GeneratedTensor("rope_freqs.weight", llama3_rope_factors(config))]
    return []


def _check(config: ModelConfig) -> None:
    if config.attention_bias or config.mlp_bias:
        raise UnsupportedModelError("config.json enables attention or MLP biases on Llama, which are not supported")
    if config.rope_type not in (None, "default", "llama3"):
        raise UnsupportedModelError(
            f"config.json asks for '{config.rope_type}' rope scaling on Llama; supported: none, llama3"
        )


ARCH = Architecture(
    hf_name="LlamaForCausalLM",
    gguf_arch="llama",
    permuted=_permuted,
    ignored_suffixes=("self_attn.rotary_emb.inv_freq",),
    generated=_generated,
    check=_check,
)
