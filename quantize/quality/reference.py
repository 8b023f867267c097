"""A numpy forward pass straight from the safetensors, the way Hugging Face computes it.

It runs one layer at a time from the memory-mapped checkpoint (weights widened to float32 only for
the layer in use, the output head in row blocks), so it also fits real 7B/8B checkpoints in 24 GB.
It follows transformers' conventions (unpermuted q/k, rotate-half rope, inv_freq with llama3 scaling),
independently of the converter, so agreeing with llama.cpp checks the conversion.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from quantize.convert.checkpoint import Checkpoint
from quantize.convert.config import ModelConfig

F32 = npt.NDArray[np.float32]
HEAD_ROWS = 8192  # output-head rows widened to float32 at a time


def inv_freq(config: ModelConfig) -> npt.NDArray[np.float64]:
    """Rotary inverse frequencies, with transformers' llama3 scaling when configured."""
    dim = config.head_dim
    base = 1.0 / (config.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    if config.rope_type != "llama3":
        return base
    scaling = config.rope_scaling or {}
    factor = float(scaling["factor"])
    low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
    old = float(scaling["original_max_position_embeddings"])
    wavelen = 2 * math.pi / base
    scaled = np.where(wavelen > old / low, base / factor, base)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old / high) & (wavelen <= old / low)
    return np.where(medium, smoothed, scaled)


def rms_norm(x: F32, weight: F32, eps: float) -> F32:
    """x / rms(x) * weight, in float32."""
    variance = np.mean(x * x, axis=-1, keepdims=True)
    out: F32 = (x / np.sqrt(variance + np.float32(eps)) * weight).astype(np.float32)
    return out


def _rotate_half(x: F32) -> F32:
    half = x.shape[-1] // 2
    out: F32 = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return out


def apply_rope(x: F32, positions: npt.NDArray[np.int64], freqs: npt.NDArray[np.float64]) -> F32:
    """Rotate (tokens, heads, head_dim) by position, transformers' rotate-half layout."""
    angles = positions[:, None].astype(np.float64) * freqs[None, :]
    emb = np.concatenate([angles, angles], axis=-1)
    cos, sin = np.cos(emb).astype(np.float32)[:, None, :], np.sin(emb).astype(np.float32)[:, None, :]
    out: F32 = (x * cos + _rotate_half(x) * sin).astype(np.float32)
    return out


def _silu(x: F32) -> F32:
    return (x / (1.0 + np.exp(-x))).astype(np.float32)


class ReferenceModel:
    """Forward pass over a checkpoint; weights are read per layer and dropped after use."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.ckpt = checkpoint
        self.config = checkpoint.config
        self.freqs = inv_freq(self.config)

    def _w(self, name: str) -> F32:
        return self.ckpt.f32(name)

    def _linear(self, x: F32, prefix: str) -> F32:
        y = x @ self._w(prefix + ".weight").T
        bias = prefix + ".bias"
        if bias in self.ckpt.tensors:
            y = y + self._w(bias)
        return y.astype(np.float32)

    def _attention(self, x: F32, layer: int, positions: npt.NDArray[np.int64]) -> F32:
        c = self.config
        p = f"model.layers.{layer}.self_attn."
        n, d = x.shape[0], c.head_dim
        q = apply_rope(self._linear(x, p + "q_proj").reshape(n, c.num_attention_heads, d), positions, self.freqs)
        k = apply_rope(self._linear(x, p + "k_proj").reshape(n, c.num_key_value_heads, d), positions, self.freqs)
        v = self._linear(x, p + "v_proj").reshape(n, c.num_key_value_heads, d)
        group = c.num_attention_heads // c.num_key_value_heads
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k) / np.float32(math.sqrt(d))
        scores = np.where(np.tril(np.ones((n, n), dtype=bool))[None], scores, -np.inf)
        scores = scores - scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(axis=-1, keepdims=True)
        out = np.einsum("hqk,khd->qhd", weights.astype(np.float32), v).reshape(n, c.num_attention_heads * d)
        return self._linear(out.astype(np.float32), p + "o_proj")

    def _mlp(self, x: F32, layer: int) -> F32:
        p = f"model.layers.{layer}.mlp."
        gate = _silu(self._linear(x, p + "gate_proj"))
        return self._linear(gate * self._linear(x, p + "up_proj"), p + "down_proj")

    def hidden_states(self, tokens: list[int]) -> F32:
        """The final normed hidden states for a token sequence."""
        c = self.config
        ids = np.asarray(tokens, dtype=np.intp)
        positions = np.arange(len(tokens), dtype=np.int64)
        x = self.ckpt.f32("model.embed_tokens.weight", ids)
        for layer in range(c.num_hidden_layers):
            p = f"model.layers.{layer}."
            h = rms_norm(x, self._w(p + "input_layernorm.weight"), c.rms_norm_eps)
            x = (x + self._attention(h, layer, positions)).astype(np.float32)
            h = rms_norm(x, self._w(p + "post_attention_layernorm.weight"), c.rms_norm_eps)
            x = (x + self._mlp(h, layer)).astype(np.float32)
        return rms_norm(x, self._w("model.norm.weight"), c.rms_norm_eps)

    def logits(self, tokens: list[int]) -> F32:
        """Logits for every position, shape (len(tokens), vocab_size)."""
        x = self.hidden_states(tokens)
        head = "lm_head.weight" if "lm_head.weight" in self.ckpt.tensors else "model.embed_tokens.weight"
        rows = self.ckpt.tensors[head].shape[0]
        out = np.empty((x.shape[0], rows), dtype=np.float32)
        for begin in range(0, rows, HEAD_ROWS):
            block = self.ckpt.f32(head, slice(begin, begin + HEAD_ROWS))
            out[:, begin : begin + block.shape[0]] = x @ block.T
        return out
