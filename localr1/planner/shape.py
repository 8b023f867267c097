"""A model's shape: what the memory and speed models need, from models.toml or from a GGUF header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localr1.gguf_header import GGUFHeader
from localr1.registry import ModelEntry


@dataclass(frozen=True)
class ModelShape:
    """Dimensions of a dense decoder (llama / qwen2 family)."""

    architecture: str
    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    context_length: int
    qkv_bias: bool = False
    rope_freqs: bool = False
    tied_embeddings: bool = False
    merges: int | None = None  # BPE merges of the vocabulary (None: unknown, about one per token)

    @property
    def q_dim(self) -> int:
        """Width of the query projection."""
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of the key (and value) projection: KV heads times head size."""
        return self.kv_heads * self.head_dim

    @property
    def gqa(self) -> int:
        """Query heads per KV head (llama.cpp's n_gqa)."""
        return self.heads // max(1, self.kv_heads)

    @property
    def layer_params(self) -> int:
        """Weights of one repeating layer (matrices only)."""
        return self.hidden * (2 * self.q_dim + 2 * self.kv_dim) + 3 * self.hidden * self.ffn

    @classmethod
    def from_entry(cls, entry: ModelEntry) -> ModelShape:
        """The shape models.toml gives (the public config.json values)."""
        scaling = entry.rope_scaling or {}
        return cls(
            architecture=entry.architecture, layers=entry.layers, hidden=entry.hidden_size,
            ffn=entry.intermediate_size, heads=entry.attention_heads, kv_heads=entry.kv_heads,
            head_dim=entry.head_dim, vocab=entry.vocab_size, context_length=entry.context_length,
            qkv_bias=entry.architecture == "qwen2",
            rope_freqs=str(scaling.get("type", scaling.get("rope_type", ""))) == "llama3",
            tied_embeddings=entry.key == "demo",
        )

    @classmethod
    def from_header(cls, header: GGUFHeader) -> ModelShape:
        """The shape a GGUF file declares (its metadata and tensor list)."""
        meta = header.metadata
        arch = str(meta.get("general.architecture") or "")

        def value(key: str, default: int = 0) -> int:
            raw: Any = meta.get(f"{arch}.{key}")
            return int(raw) if isinstance(raw, int | float) else default

        names = {t.name for t in header.tensors}
        embd = next((t for t in header.tensors if t.name == "token_embd.weight"), None)
        hidden = value("embedding_length")
        heads = value("attention.head_count")
        vocab_meta = meta.get(f"{arch}.vocab_size")
        vocab = int(embd.shape[1]) if embd is not None and len(embd.shape) > 1 else int(vocab_meta or 0)
        return cls(
            architecture=arch, layers=value("block_count"), hidden=hidden, ffn=value("feed_forward_length"),
            heads=heads, kv_heads=value("attention.head_count_kv", heads),
            head_dim=value("attention.key_length", hidden // max(1, heads)), vocab=vocab,
            context_length=value("context_length"), qkv_bias="blk.0.attn_q.bias" in names,
            rope_freqs="rope_freqs.weight" in names, tied_embeddings="output.weight" not in names,
            merges=header.array_lengths.get("tokenizer.ggml.merges", 0),
        )
