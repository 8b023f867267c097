"""Conversion kernels (exact, both paths), llama.cpp's q/k permutation, llama3 rope factors, the registry."""

from __future__ import annotations

import math

import gguf
import numpy as np
import pytest

from quantize.convert import dtypes, fastcast
from quantize.convert.arch import ARCHITECTURES, get_architecture, rope_permutation
from quantize.convert.arch.llama import llama3_rope_factors
from quantize.convert.config import ModelConfig
from quantize.errors import UnsupportedModelError
from quantize.quality.reference import inv_freq

QType = gguf.GGMLQuantizationType
ALL_BF16 = np.arange(65536, dtype=np.uint16)


def numpy_cast(bits: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float16).view(np.uint16)


def same_halves(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equal, except that any NaN equals any NaN."""
    nan_a, nan_b = np.isnan(a.view(np.float16)), np.isnan(b.view(np.float16))
    return bool(np.array_equal(nan_a, nan_b) and np.array_equal(a[~nan_a], b[~nan_b]))


def test_integer_bf16_to_f16_equals_numpy_cast_for_every_value() -> None:
    out = np.empty_like(ALL_BF16)
    dtypes.bf16_to_f16(ALL_BF16, out)
    assert same_halves(out, numpy_cast(ALL_BF16))


@pytest.mark.skipif(not fastcast.available(), reason="ggml kernels not found")
def test_ggml_kernels_equal_numpy() -> None:
    out = np.empty_like(ALL_BF16)
    fastcast.bf16_to_f16(ALL_BF16, out)
    assert same_halves(out, numpy_cast(ALL_BF16))
    values = (np.random.default_rng(0).standard_normal(100_000) * 300).astype(np.float32)
    values[:4] = [1e6, -1e6, 1e-9, 0.0]
    halves = np.empty(values.size, dtype=np.uint16)
    fastcast.f32_to_f16(values, halves)
    with np.errstate(over="ignore"):
        assert np.array_equal(halves, values.astype(np.float16).view(np.uint16))
    rows = np.random.default_rng(1).standard_normal((48, 96)).astype(np.float32)
    rows[0, :32] = 0
    out8 = np.empty(48 * 96 * 2, dtype=np.uint8)
    written = fastcast.quantize_q8_0(rows, out8)
    assert np.array_equal(out8[:written], gguf.quants.quantize(rows, QType.Q8_0).reshape(-1))


@pytest.mark.parametrize(("src", "qtype"), [("BF16", QType.F32), ("BF16", QType.F16), ("BF16", QType.BF16),
                                            ("F16", QType.F32), ("F32", QType.F16), ("F32", QType.BF16),
                                            ("BF16", QType.Q8_0), ("F16", QType.Q8_0)])
def test_convert_chunk_matches_the_gguf_package(src: str, qtype: QType) -> None:
    values = (np.random.default_rng(2).standard_normal((8, 64)) * 0.05).astype(np.float32)
    if src == "BF16":
        raw = np.asarray(gguf.quants.quantize(values, QType.BF16)).view(np.uint16).reshape(values.shape)
        exact = (raw.astype(np.uint32) << 16).view(np.float32)
    else:
        raw = values.astype(np.float16 if src == "F16" else np.float32)
        exact = raw.astype(np.float32)
    out = np.empty(values.size * 4, dtype=np.uint8)
    data = dtypes.convert_chunk(raw, src, qtype, out)
    expected = np.asarray(gguf.quants.quantize(exact, qtype)).view(np.uint8).reshape(-1)
    assert bytes(data) == expected.tobytes()


def test_permutation_is_convert_hf_to_ggufs() -> None:
    def permute(weights: np.ndarray, n_head: int) -> np.ndarray:  # as in llama.cpp's converter
        return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
                .swapaxes(1, 2).reshape(weights.shape))

    weights = np.random.default_rng(0).standard_normal((8 * 16, 24))
    for heads in (8, 2):
        np.testing.assert_array_equal(weights[rope_permutation(len(weights), heads)], permute(weights, heads))


def r1_llama_config(**changes: object) -> ModelConfig:
    raw = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
           "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
           "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
           "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 8192, "rope_type": "llama3"}, **changes}
    return ModelConfig.from_dict(raw)


def test_rope_factors_reproduce_transformers_llama3_frequencies() -> None:
    config = r1_llama_config()
    factors = llama3_rope_factors(config)
    assert factors.shape == (64,) and factors.dtype == np.float32
    base = 1.0 / (config.rope_theta ** (np.arange(0, 128, 2) / 128))
    np.testing.assert_allclose(base / factors, inv_freq(config), rtol=1e-6)
    assert factors[0] == 1.0 and factors[-1] == 8.0 and math.isclose(float(factors.max()), 8.0)


def test_registry() -> None:
    assert set(ARCHITECTURES) == {"Qwen2ForCausalLM", "LlamaForCausalLM"}
    assert get_architecture("Qwen2ForCausalLM").gguf_arch == "qwen2"
    with pytest.raises(UnsupportedModelError, match="supported: LlamaForCausalLM, Qwen2ForCausalLM"):
        get_architecture("GPT2LMHeadModel")


def test_each_architecture_declares_only_its_differences() -> None:
    config = r1_llama_config()
    llama = get_architecture("LlamaForCausalLM").tensor_map(config)
    qwen2 = get_architecture("Qwen2ForCausalLM").tensor_map(config)
    assert set(qwen2) - set(llama) == {f"model.layers.{i}.self_attn.{p}_proj.bias" for i in range(32)
                                       for p in "qkv"}
    assert {t.permute_heads for n, t in llama.items() if n.endswith("q_proj.weight")} == {32}
    assert {t.permute_heads for n, t in llama.items() if n.endswith("k_proj.weight")} == {8}
    assert not any(t.permute_heads for t in qwen2.values())
    assert llama["lm_head.weight"].name == "output.weight" and llama["lm_head.weight"].shape == (128256, 4096)


def test_fast_header_packing_writes_the_gguf_packages_bytes() -> None:
    import io

    from quantize.convert.writer import FastGGUFWriter

    headers = []
    for cls in (gguf.GGUFWriter, FastGGUFWriter):
        writer = cls(None, "llama")
        writer.add_token_list(["a", "Ġb", "<｜User｜>", "日本", "🤖"])
        writer.add_token_types([1, 3, 4, 5, 1])
        writer.add_token_merges(["a b", "Ġ b"])
        writer.add_array("test.floats", [1.5, 2.5])
        writer.add_array("test.bools", [True, False])
        writer.add_uint32("test.int", 7)
        buffer = io.BytesIO()
        writer.fout = [buffer]  # type: ignore[list-item]
        writer.state = gguf.gguf_writer.WriterState.EMPTY
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        headers.append(buffer.getvalue())
    assert headers[0] == headers[1]


def test_fast_kernels_refuse_an_output_buffer_too_small() -> None:
    import numpy as np
    import pytest

    from quantize.convert import fastcast

    if not fastcast.available():
        pytest.skip("ggml kernels not found")
    src = np.zeros(64, dtype=np.float32)
    with pytest.raises(ValueError, match="at least 64"):
        fastcast.f32_to_f16(src, np.zeros(32, dtype=np.uint16))
    with pytest.raises(ValueError, match="contiguous"):
        fastcast.bf16_to_f16(np.zeros(64, dtype=np.uint16), np.zeros(128, dtype=np.uint16)[::2])
