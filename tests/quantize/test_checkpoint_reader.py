"""Reading checkpoints without a framework: config.json, safetensors headers and memory-mapped tensors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from quantize.convert.checkpoint import open_checkpoint
from quantize.convert.config import ModelConfig
from quantize.convert.dtypes import bf16_bits_to_f32
from quantize.convert.safetensors_io import read_header
from quantize.errors import CheckpointError
from tests.fixtures.checkpoints import encode, llama_spec, stream_safetensors, write_checkpoint
from tests.quantize.conftest import QWEN2


def test_config_ignores_unknown_keys_and_derives_sizes() -> None:
    raw = {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 1536, "intermediate_size": 8960,
           "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936,
           "max_position_embeddings": 131072, "rms_norm_eps": 1e-6, "rope_theta": 10000,
           "sliding_window": 4096, "use_mrope": False, "some_future_key": {"x": 1}}
    config = ModelConfig.from_dict(raw)
    assert config.architecture == "Qwen2ForCausalLM"
    assert (config.head_dim, config.q_dim, config.kv_dim) == (128, 1536, 256)
    assert config.rope_type is None and config.tie_word_embeddings is False


def test_config_without_architectures() -> None:
    with pytest.raises(CheckpointError, match="no 'architectures' list"):
        ModelConfig.from_dict({"hidden_size": 8})


def test_llama3_rope_type() -> None:
    raw = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
           "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
           "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
           "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 8192, "rope_type": "llama3"}}
    assert ModelConfig.from_dict(raw).rope_type == "llama3"


def test_tensors_match_the_safetensors_library(qwen2_ckpt: Path) -> None:
    with open_checkpoint(qwen2_ckpt) as ckpt:
        assert len(ckpt.files) > 1
        assert ckpt.config.vocab_size == QWEN2.vocab_size
        listed = set()
        for path in ckpt.files:
            with safe_open(str(path), "numpy") as st:  # lists BF16 tensors, cannot return them as numpy
                listed |= set(st.keys())
        assert listed == set(ckpt.tensors)
        for name, ref in ckpt.tensors.items():
            raw = np.asarray(ckpt.raw(name))
            start = ref.start
            assert raw.tobytes() == ref.path.read_bytes()[start : start + ref.nbytes]
        values = ckpt.f32("model.norm.weight")
        assert values.dtype == np.float32 and np.all(np.abs(values - 1) < 0.6)


def test_float32_and_float16_checkpoints(tmp_path: Path) -> None:
    for dtype in ("F32", "F16"):
        ckpt_dir = write_checkpoint(tmp_path / dtype, llama_spec(dtype=dtype, num_layers=1))
        with open_checkpoint(ckpt_dir) as ckpt, safe_open(str(ckpt_dir / "model.safetensors"), "numpy") as st:
            for name in ckpt.tensors:
                np.testing.assert_array_equal(ckpt.raw(name), st.get_tensor(name))


def test_bf16_widening_is_exact() -> None:
    values = np.array([1.0, -2.5, 3.140625, 2.0**-126, 65536.0, -0.0, np.inf], dtype=np.float32)
    bits = np.frombuffer(encode(values, "BF16"), dtype=np.uint16)
    np.testing.assert_array_equal(bf16_bits_to_f32(bits), values)


def test_streamed_writer_is_valid_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "big.safetensors"
    nbytes = stream_safetensors(path, [("a", (300, 7)), ("b", (11,))], "BF16")
    refs = read_header(path)
    assert refs["a"].shape == (300, 7) and refs["b"].nbytes == 22 and nbytes == 300 * 7 * 2 + 22
    with safe_open(str(path), "numpy") as st:
        assert sorted(st.keys()) == ["a", "b"]


def test_header_length_beyond_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes((10_000).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match="header says 10000 bytes"):
        read_header(path)


def test_header_with_unsupported_dtype(tmp_path: Path) -> None:
    header = json.dumps({"x": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}}).encode()
    path = tmp_path / "ints.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(16))
    with pytest.raises(CheckpointError, match="dtype I64; supported: BF16, F16, F32"):
        read_header(path)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint folder not found"):
        open_checkpoint(tmp_path / "nope")
