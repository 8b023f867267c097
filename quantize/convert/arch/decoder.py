"""What every supported decoder shares: tensor names, expected shapes, base metadata.

An architecture module declares only what differs (extra tensors, permutations, metadata, checks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from quantize.convert.config import ModelConfig

Shape = tuple[int, ...]
LayerMap = dict[str, tuple[str, Shape]]


@dataclass(frozen=True)
class TargetTensor:
    """A source tensor's destination: GGUF name, the shape config.json implies, and row permutation."""

    name: str
    shape: Shape
    permute_heads: int = 0


@dataclass(frozen=True)
class GeneratedTensor:
    """A tensor computed from config.json rather than read from the checkpoint (e.g. rope_freqs)."""

    name: str
    data: npt.NDArray[np.float32]


def _no_layer_extras(config: ModelConfig) -> LayerMap:
    return {}


def _no_permutations(config: ModelConfig) -> dict[str, int]:
    return {}


def _no_generated(config: ModelConfig) -> list[GeneratedTensor]:
    return []


def _no_check(config: ModelConfig) -> None:
    return None


def _no_metadata(config: ModelConfig) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Architecture:
    """A Hugging Face architecture and how it maps onto a llama.cpp one."""

    hf_name: str
    gguf_arch: str
    layer_extras: Callable[[ModelConfig], LayerMap] = _no_layer_extras
    permuted: Callable[[ModelConfig], dict[str, int]] = _no_permutations
    ignored_suffixes: tuple[str, ...] = ()
    generated: Callable[[ModelConfig], list[GeneratedTensor]] = _no_generated
    check: Callable[[ModelConfig], None] = _no_check
    metadata: Callable[[ModelConfig], dict[str, Any]] = _no_metadata

    def layer_map(self, config: ModelConfig) -> LayerMap:
        """Per-layer source suffix -> (GGUF suffix, shape), common part plus this architecture's extras."""
        return {**common_layer_map(config), **self.layer_extras(config)}

    def tensor_map(self, config: ModelConfig) -> dict[str, TargetTensor]:
        """Every expected source tensor name -> its target."""
        permuted = self.permuted(config)
        targets: dict[str, TargetTensor] = {}
        for source, (name, shape) in common_global_map(config).items():
            targets[source] = TargetTensor(name, shape)
        for layer in range(config.num_hidden_layers):
            for suffix, (name, shape) in self.layer_map(config).items():
                targets[f"model.layers.{layer}.{suffix}"] = TargetTensor(
                    f"blk.{layer}.{name}", shape, permuted.get(name, 0)
                )
        return targets

    def is_ignored(self, source: str) -> bool:
        """True for source tensors dropped on purpose (derived values llama.cpp recomputes)."""
        return any(source.endswith(suffix) for suffix in self.ignored_suffixes)


def common_global_map(config: ModelConfig) -> dict[str, tuple[str, Shape]]:
    """Embedding, final norm and (when untied) the output head."""
    out = {
        "model.embed_tokens.weight": ("token_embd.weight", (config.vocab_size, config.hidden_size)),
        "model.norm.weight": ("output_norm.weight", (config.hidden_size,)),
    }
    if not config.tie_word_embeddings:
        out["lm_head.weight"] = ("output.weight", (config.vocab_size, config.hidden_size))
    return out


def common_layer_map(config: ModelConfig) -> LayerMap:
    """The attention and SwiGLU tensors of one decoder layer."""
    hidden, ffn = config.hidden_size, config.intermediate_size
    return {
        "input_layernorm.weight": ("attn_norm.weight", (hidden,)),
        "self_attn.q_proj.weight": ("attn_q.weight", (config.q_dim, hidden)),
        "self_attn.k_proj.weight": ("attn_k.weight", (config.kv_dim, hidden)),
        "self_attn.v_proj.weight": ("attn_v.weight", (config.kv_dim, hidden)),
        "self_attn.o_proj.weight": ("attn_output.weight", (hidden, config.q_dim)),
        "post_attention_layernorm.weight": ("ffn_norm.weight", (hidden,)),
        "mlp.gate_proj.weight": ("ffn_gate.weight", (ffn, hidden)),
        "mlp.up_proj.weight": ("ffn_up.weight", (ffn, hidden)),
        "mlp.down_proj.weight": ("ffn_down.weight", (hidden, ffn)),
    }


def rope_permutation(n_rows: int, n_head: int) -> npt.NDArray[np.intp]:
    """Row gather index of llama.cpp's q/k permutation (convert_hf_to_gguf's `permute`).

    permute(W) == W[rope_permutation(len(W), n_head)]: each head's halves are interleaved.
    """
    rows = np.arange(n_rows, dtype=np.intp)
    return rows.reshape(n_head, 2, n_rows // n_head // 2).swapaxes(1, 2).reshape(n_rows)
