"""Qwen2 (the 1.5B, 7B, 14B and 32B distills): q/k/v biases, no permutation, NEOX rope in llama.cpp."""

from __future__ import annotations

from quantize.convert.arch.decoder import Architecture, LayerMap
from quantize.convert.config import ModelConfig
from quantize.errors import UnsupportedModelError


def _biases(config: ModelConfig) -> LayerMap:
    return {
        "self_attn.q_proj.bias": ("attn_q.bias", (config.q_dim,)),
        "self_attn.k_proj.bias": ("attn_k.bias", (config.kv_dim,)),
        "self_attn.v_proj.bias": ("attn_v.bias", (config.kv_dim,)),
    }


def _check(config: ModelConfig) -> None:
    if config.use_sliding_window:
        raise UnsupportedModelError(
            "config.json enables sliding-window attention, which the converter does not support"
        )
    if config.rope_type not in (None, "default"):
        raise UnsupportedModelError(
            f"config.json asks for '{config.rope_type}' rope scaling on Qwen2; only unscaled rope is supported"
        )


ARCH = Architecture(hf_name="Qwen2ForCausalLM", gguf_arch="qwen2", layer_extras=_biases, check=_check)
