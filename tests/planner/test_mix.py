"""llama.cpp's per-tensor type rule against real files: the R1 7B Q4_K_M header, the demo, our own quantizer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import gguf
import pytest

from localr1.gguf_header import read_header
from localr1.planner.mix import FILE_TYPES, mixed_tensors
from localr1.planner.shape import ModelShape
from localr1.planner.weights import WeightsLayout
from localr1.registry import load_registry

T = gguf.GGMLQuantizationType


def test_r1_7b_q4_k_m_prediction_matches_the_real_header_to_the_byte(r1_header_path: Path) -> None:
    header = read_header(r1_header_path)
    assert header.metadata["general.file_type"] == FILE_TYPES["Q4_K_M"][0]
    shape = ModelShape.from_entry(load_registry()["r1-qwen-7b"])  # models.toml, before any download
    from_header = ModelShape.from_header(header)
    assert from_header.merges == 151_387  # the header carries the vocabulary; models.toml does not
    assert replace(from_header, merges=None) == shape
    predicted = {t.name: t for t in mixed_tensors(shape, "Q4_K_M")}
    assert len(predicted) == len(header.tensors) == 339
    for real in header.tensors:
        mine = predicted[real.name]
        assert (mine.ne, int(mine.type), mine.n_bytes) == (real.shape, real.type_id, real.n_bytes), real.name
    real_total = sum(t.n_bytes for t in header.tensors)
    assert real_total == 4_677_120_000
    from_shape = WeightsLayout.from_shape(shape, "Q4_K_M").total
    assert from_shape == WeightsLayout.from_header(header, shape.layers).total == real_total
    assert abs(from_shape / real_total - 1) <= 0.02  # the requirement; the rule makes it exact


def test_q4_k_m_gives_q6_k_to_the_layers_llama_cpp_favours(r1_header_path: Path) -> None:
    header = read_header(r1_header_path)
    q6 = {int(t.name.split(".")[1]) for t in header.tensors if t.name.endswith("attn_v.weight") and t.type_id == T.Q6_K}
    # use_more_bits(i, 28): the first and last eighth, and every third layer between
    assert q6 == {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27}
    shape = ModelShape.from_header(header)
    mine = {int(t.name.split(".")[1]) for t in mixed_tensors(shape, "Q4_K_M")
            if t.name.endswith("ffn_down.weight") and t.type == T.Q6_K}
    assert mine == q6


def test_demo_q4_1_with_tied_embeddings_and_576_wide_rows(demo_path: Path) -> None:
    header = read_header(demo_path)
    shape = ModelShape.from_header(header)
    assert shape.tied_embeddings and shape.hidden == 576
    predicted = {t.name: t for t in mixed_tensors(shape, "Q4_1", imatrix=False)}
    for real in header.tensors:
        assert (int(predicted[real.name].type), predicted[real.name].n_bytes) == (real.type_id, real.n_bytes)
    # the tied embedding is the output: Q6_K would be wanted, but 576 is not a multiple of 256 -> Q8_0
    assert predicted["token_embd.weight"].type == T.Q8_0


@pytest.mark.parametrize(("key", "q4_k_m_gb"), [("r1-qwen-1.5b", 1.12), ("r1-qwen-7b", 4.68), ("r1-llama-8b", 4.92),
                                               ("r1-qwen-14b", 8.99), ("r1-qwen-32b", 19.9), ("r1-llama-70b", 42.5)])
def test_family_sizes_match_the_published_q4_k_m_files(key: str, q4_k_m_gb: float) -> None:
    shape = ModelShape.from_entry(load_registry()[key])
    predicted = WeightsLayout.from_shape(shape, "Q4_K_M").total / 1e9
    assert abs(predicted / q4_k_m_gb - 1) < 0.02, (predicted, q4_k_m_gb)


def test_hand_checked_rules() -> None:
    shape = ModelShape("llama", 80, 8192, 28672, 64, 8, 128, 128256, 131072)
    q2 = {t.name: t.type for t in mixed_tensors(shape, "Q2_K")}
    assert q2["blk.10.attn_v.weight"] == T.Q5_K  # gqa 8 >= 4 gives Q4_K, and the 70B bumps Q4_K to Q5_K
    assert q2["blk.10.ffn_down.weight"] == T.Q3_K and q2["blk.10.attn_output.weight"] == T.Q3_K
    assert q2["output.weight"] == T.Q6_K and q2["token_embd.weight"] == T.Q2_K
    small = ModelShape("qwen2", 16, 1536, 8960, 12, 2, 128, 151936, 131072, qkv_bias=True)
    q3 = {t.name: t.type for t in mixed_tensors(small, "Q3_K_M")}
    assert [q3[f"blk.{i}.attn_v.weight"] for i in range(3)] == [T.Q5_K, T.Q5_K, T.Q4_K]
    assert q3["blk.0.ffn_down.weight"] == T.Q5_K and q3["blk.1.ffn_down.weight"] == T.Q4_K  # i < 16/16
    assert q3["blk.0.attn_q.bias"] == T.F32
    iq4 = {t.name: t.type for t in mixed_tensors(small, "IQ4_XS", imatrix=False)}
    assert iq4["blk.0.ffn_down.weight"] == T.Q5_K and iq4["blk.5.ffn_down.weight"] == T.IQ4_XS
    assert iq4["blk.5.attn_v.weight"] == T.Q5_K  # 12 / 2 = 6 query heads per KV head


def test_unknown_file_type_is_refused() -> None:
    shape = ModelShape("llama", 2, 256, 512, 4, 2, 64, 1000, 4096)
    with pytest.raises(ValueError, match="no tensor-type rule for IQ1_M"):
        mixed_tensors(shape, "IQ1_M")


@pytest.mark.model
@pytest.mark.parametrize("file_type", ["Q4_K_M", "Q3_K_M", "Q5_K_M", "IQ4_XS", "Q2_K", "Q6_K"])
def test_our_quantizer_makes_what_the_rule_predicts(file_type: str, tmp_path: Path) -> None:
    """llama.cpp's quantizer, run here on a 12-layer F16 model, chooses every tensor's type as predicted
    (12 layers: the name-sorted and the layer orders of the counters would differ)."""
    from localr1.planner.synthetic import write_synthetic_gguf
    from quantize.ladder.qtypes import QUANT_TYPES
    from quantize.ladder.quantizer import QuantizeOptions, quantize_file

    shape = ModelShape("llama", 12, 256, 512, 8, 2, 32, 1024, 4096)
    source = write_synthetic_gguf(tmp_path / "f16.gguf", shape, mixed_tensors(shape, "F16"), {})
    out = tmp_path / f"{file_type}.gguf"
    quantize_file(source, out, QUANT_TYPES[file_type], QuantizeOptions(threads=2))
    predicted = {t.name: t for t in mixed_tensors(shape, file_type, imatrix=False)}
    for real in read_header(out).tensors:
        assert (int(predicted[real.name].type), predicted[real.name].n_bytes) == (real.type_id, real.n_bytes), real.name
