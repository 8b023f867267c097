"""A synthetic GGUF of any dense shape and type mix, for calibration: speed per type, buffer sizes.

Weights are a small sample of valid blocks repeated to fill each tensor (decode speed and memory do not
depend on the values); the tokenizer is a stand-in with one token per vocabulary slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import gguf
import numpy as np

from localr1.planner.mix import Tensor
from localr1.planner.shape import ModelShape

T = gguf.GGMLQuantizationType
_CHUNK = 16 * 2**20
_FLOAT_DTYPES = {T.F32: np.float32, T.F16: np.float16}


def float_sample(qtype: T, n_values: int = 1 << 16, seed: int = 0) -> bytes:
    """Bytes of small random values of a float type (F32, F16 or BF16)."""
    values = (0.02 * np.random.default_rng(seed).standard_normal(n_values)).astype(np.float32)
    if qtype == T.BF16:
        return (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    return values.astype(_FLOAT_DTYPES[qtype]).tobytes()


def _write_vocab(writer: gguf.GGUFWriter, shape: ModelShape) -> None:
    tokens = ["a", "b", "ab"] + [f"<{i}>" for i in range(3, shape.vocab)]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.NORMAL] * len(tokens))
    writer.add_token_merges(["a b"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(False)


def _write_metadata(writer: gguf.GGUFWriter, shape: ModelShape, file_type: int) -> None:
    writer.add_name("localr1 synthetic")
    writer.add_block_count(shape.layers)
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.hidden)
    writer.add_feed_forward_length(shape.ffn)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_key_length(shape.head_dim)
    writer.add_value_length(shape.head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(file_type)
    _write_vocab(writer, shape)


def _fill(fh: object, sample: bytes, n_bytes: int) -> None:
    """Write n_bytes made of the sample repeated (the sample holds whole blocks)."""
    block = np.frombuffer(sample, dtype=np.uint8)
    chunk = np.resize(block, min(n_bytes, max(len(block), _CHUNK // len(block) * len(block)))).tobytes()
    left = n_bytes
    while left:
        piece = chunk[: min(left, len(chunk))]
        fh.write(piece)  # type: ignore[attr-defined]
        left -= len(piece)


def write_synthetic_gguf(path: Path, shape: ModelShape, tensors: list[Tensor],
                         samples: Mapping[T, bytes], file_type: int = 1) -> Path:
    """Write a loadable GGUF with these tensors; quantized types take their bytes from `samples`."""
    if shape.architecture not in ("llama", "qwen2"):
        raise ValueError(f"synthetic models are llama or qwen2, not {shape.architecture}")
    data: dict[T, bytes] = {}
    for t in {t.type for t in tensors}:
        data[t] = samples[t] if t in samples else float_sample(t)
    writer = gguf.GGUFWriter(path, shape.architecture)
    _write_metadata(writer, shape, file_type)
    for tensor in tensors:
        writer.add_tensor_info(tensor.name, tuple(reversed(tensor.ne)), np.dtype(np.float32), tensor.n_bytes,
                               raw_dtype=tensor.type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    alignment = 32
    with path.open("ab") as fh:
        for tensor in tensors:
            fh.write(b"\0" * (-fh.tell() % alignment))
            _fill(fh, data[tensor.type], tensor.n_bytes)
        fh.write(b"\0" * (-fh.tell() % alignment))
    return path
