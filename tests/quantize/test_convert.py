"""Conversions of both architectures load in llama.cpp and match their checkpoints (tokens, logits, template)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from quantize.convert import arch as arch_registry
from quantize.convert import fastcast
from quantize.convert.converter import ConvertProgress, convert
from quantize.convert.dtypes import OUT_TYPES
from quantize.quality.conversion_check import check_logits, check_tokenizer, verify
from tests.quantize.conftest import LLAMA, QWEN2
from tests.quantize.helpers import edit_json, rewrite_shard, with_chat_template

QType = gguf.GGMLQuantizationType


def fields(path: Path) -> dict[str, Any]:
    reader = gguf.GGUFReader(path, "r")
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def tensors(path: Path) -> dict[str, Any]:
    return {t.name: t for t in gguf.GGUFReader(path, "r").tensors}


@pytest.mark.model
@pytest.mark.parametrize("outtype", ["f32", "f16"])
@pytest.mark.parametrize("which", ["qwen2", "llama"])
def test_conversion_passes_all_three_verifications(which: str, outtype: str, request: pytest.FixtureRequest,
                                                   tmp_path: Path) -> None:
    ckpt: Path = request.getfixturevalue(f"{which}_ckpt")
    result = convert(ckpt, tmp_path / "model.gguf", outtype=outtype)
    report = verify(ckpt, result.files[0])
    assert report.passed, report.lines()
    logits = report.checks[1].data
    if outtype == "f32":  # llama.cpp's own converter reaches ~1e-6 this way
        assert logits["max_rel_diff"] < 1e-5 and logits["top1"] == 1.0


@pytest.mark.model
@pytest.mark.parametrize("outtype", ["bf16", "q8_0"])
def test_other_types_load_and_agree(outtype: str, qwen2_ckpt: Path, tmp_path: Path) -> None:
    result = convert(qwen2_ckpt, tmp_path / "model.gguf", outtype=outtype)
    assert result.file_type == outtype.upper()
    report = verify(qwen2_ckpt, result.files[0])
    assert report.passed, report.lines()
    types = {t.name: t.tensor_type for t in tensors(result.files[0]).values()}
    assert types["blk.0.attn_q.weight"] == OUT_TYPES[outtype]
    assert types["blk.0.attn_q.bias"] == QType.F32


@pytest.mark.model
def test_default_f16_kv_cache_is_within_its_floor(llama_ckpt: Path, tmp_path: Path) -> None:
    result = convert(llama_ckpt, tmp_path / "model.gguf", outtype="f32")
    check = check_logits(llama_ckpt, result.files[0], kv_f32=False)
    assert check.passed, check.detail
    assert 1e-6 < check.data["max_rel_diff"] < 5e-3


def test_qwen2_metadata(qwen2_ckpt: Path, tmp_path: Path) -> None:
    path = convert(qwen2_ckpt, tmp_path / "model.gguf", outtype="f16").files[0]
    meta = fields(path)
    assert meta["general.architecture"] == "qwen2"
    assert meta["general.name"] == "qwen2" and meta["general.size_label"] == "181K"
    assert meta["general.file_type"] == gguf.LlamaFileType.MOSTLY_F16
    assert meta["general.quantization_version"] == gguf.GGML_QUANT_VERSION
    expected = {"context_length": 131072, "block_count": 2, "embedding_length": 64, "feed_forward_length": 192,
                "attention.head_count": 4, "attention.head_count_kv": 2, "rope.freq_base": 10000.0,
                "vocab_size": 640, "rope.dimension_count": 16}
    for key, value in expected.items():
        assert meta[f"qwen2.{key}"] == value, key
    assert meta["qwen2.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-6)
    assert meta["general.sampling.temp"] == pytest.approx(0.6) and meta["general.sampling.top_p"] == pytest.approx(0.95)
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "qwen2"
    assert "<｜Assistant｜>" in meta["tokenizer.chat_template"]
    assert meta["tokenizer.ggml.add_bos_token"] is True and meta["tokenizer.ggml.add_eos_token"] is False


def test_vocabulary_is_padded_and_typed(qwen2_ckpt: Path, tmp_path: Path) -> None:
    path = convert(qwen2_ckpt, tmp_path / "model.gguf").files[0]
    meta = fields(path)
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    assert len(tokens) == len(types) == QWEN2.vocab_size
    by_text = dict(zip(tokens, types, strict=True))
    assert by_text["<｜User｜>"] == gguf.TokenType.CONTROL
    assert by_text["<think>"] == by_text["</think>"] == gguf.TokenType.USER_DEFINED
    assert by_text["Ġthe"] == gguf.TokenType.NORMAL
    assert tokens[-1] == f"[PAD{QWEN2.vocab_size - 1}]" and types[-1] == gguf.TokenType.UNUSED
    assert tokens[meta["tokenizer.ggml.bos_token_id"]] == "<｜begin▁of▁sentence｜>"
    assert tokens[meta["tokenizer.ggml.eos_token_id"]] == "<｜end▁of▁sentence｜>"
    assert tokens[meta["tokenizer.ggml.padding_token_id"]] == "<｜▁pad▁｜>"
    assert meta["tokenizer.ggml.merges"][0].count(" ") == 1


def test_llama_tensors(llama_ckpt: Path, tmp_path: Path) -> None:
    path = convert(llama_ckpt, tmp_path / "model.gguf", outtype="f16").files[0]
    found = tensors(path)
    assert fields(path)["tokenizer.ggml.pre"] == "llama-bpe"
    rope = found["rope_freqs.weight"]
    assert rope.tensor_type == QType.F32 and list(rope.shape) == [LLAMA.head_dim // 2]
    factors = np.asarray(rope.data)
    assert factors[0] == 1.0 and factors[-1] == 8.0 and np.any((factors > 1) & (factors < 8))
    assert found["blk.1.attn_norm.weight"].tensor_type == QType.F32
    assert found["output_norm.weight"].tensor_type == QType.F32
    assert found["token_embd.weight"].tensor_type == QType.F16
    assert list(found["blk.0.attn_k.weight"].shape) == [64, 32]  # GGUF order: columns first
    assert not any(name.endswith(".bias") for name in found)
    assert len(found) == 1 + 2 + 9 * LLAMA.num_layers + 1  # rope_freqs, embd+output(+norm), layers


@pytest.mark.model
def test_large_tensors_stream_in_chunks_and_split(medium_ckpt: Path, tmp_path: Path) -> None:
    whole = convert(medium_ckpt, tmp_path / "whole.gguf", outtype="f32")
    updates: list[ConvertProgress] = []
    split = convert(medium_ckpt, tmp_path / "split.gguf", outtype="f32", split_max_size=3_000_000,
                    task_bytes=64 * 1024, progress=updates.append)
    assert len(split.files) > 2
    assert split.files[0].name == f"split-00001-of-{len(split.files):05d}.gguf"
    assert len(updates) > split.tensors * 2  # big tensors went in several chunks
    assert [u.bytes_done for u in updates] == sorted(u.bytes_done for u in updates)
    assert updates[-1].bytes_done == updates[-1].bytes_total == split.tensor_bytes
    assert updates[-1].tensors_done == updates[-1].tensors_total == split.tensors
    ours = {n: np.asarray(t.data) for f in split.files for n, t in tensors(f).items()}
    reference = {n: np.asarray(t.data) for n, t in tensors(whole.files[0]).items()}
    assert ours.keys() == reference.keys()
    assert all(np.array_equal(ours[n], reference[n]) for n in ours)
    report = verify(medium_ckpt, split.files[0])  # llama.cpp finds the other shards itself
    assert report.passed, report.lines()


@pytest.mark.skipif(not fastcast.available(), reason="ggml kernels not found")
def test_numpy_and_ggml_kernels_write_identical_files(qwen2_ckpt: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for outtype in ("f16", "q8_0"):
        fast = convert(qwen2_ckpt, tmp_path / f"fast-{outtype}.gguf", outtype=outtype).files[0]
        monkeypatch.setattr(fastcast, "available", lambda: False)
        slow = convert(qwen2_ckpt, tmp_path / f"slow-{outtype}.gguf", outtype=outtype).files[0]
        monkeypatch.undo()
        assert fast.read_bytes() == slow.read_bytes()


@pytest.mark.model
def test_a_wrong_permutation_is_caught(llama_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    llama = arch_registry.ARCHITECTURES["LlamaForCausalLM"]
    monkeypatch.setitem(arch_registry.ARCHITECTURES, "LlamaForCausalLM", replace(llama, permuted=lambda c: {}))
    path = convert(llama_ckpt, tmp_path / "model.gguf", outtype="f32").files[0]
    check = check_logits(llama_ckpt, path)
    assert not check.passed and check.data["max_rel_diff"] > 1e-2


@pytest.mark.model
def test_missing_rope_freqs_are_caught(llama_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    llama = arch_registry.ARCHITECTURES["LlamaForCausalLM"]
    monkeypatch.setitem(arch_registry.ARCHITECTURES, "LlamaForCausalLM", replace(llama, generated=lambda c: []))
    path = convert(llama_ckpt, tmp_path / "model.gguf", outtype="f32").files[0]
    assert not check_logits(llama_ckpt, path).passed


@pytest.mark.model
def test_a_wrong_pre_tokenizer_is_caught(llama_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("quantize.convert.tokenizer.detect_pre_tokenizer", lambda data: "qwen2")
    path = convert(llama_ckpt, tmp_path / "model.gguf").files[0]
    check = check_tokenizer(llama_ckpt, path)
    assert not check.passed and "Numbers" in check.detail


@pytest.mark.model
def test_a_changed_template_is_caught(qwen2_ckpt: Path, tmp_path: Path) -> None:
    path = convert(qwen2_ckpt, tmp_path / "model.gguf").files[0]
    template = str(fields(path)["tokenizer.chat_template"]).replace("<｜User｜>", "<｜User｜> ")
    report = verify(qwen2_ckpt, with_chat_template(path, tmp_path / "edited.gguf", template))
    assert [c.name for c in report.checks if not c.passed] == ["template"]


@pytest.mark.model
def test_tied_embeddings_use_the_embedding_as_output(copy_ckpt: Any, llama_ckpt: Path, tmp_path: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    edit_json(ckpt / "config.json", tie_word_embeddings=True)
    rewrite_shard(ckpt / "model.safetensors", drop=("lm_head.weight",))
    path = convert(ckpt, tmp_path / "model.gguf", outtype="f32").files[0]
    assert "output.weight" not in tensors(path)
    report = verify(ckpt, path)
    assert report.passed, report.lines()


def test_worker_count_and_task_size_do_not_change_the_file(medium_ckpt: Path, tmp_path: Path) -> None:
    one = convert(medium_ckpt, tmp_path / "one.gguf", outtype="f16", workers=1).files[0]
    many = convert(medium_ckpt, tmp_path / "many.gguf", outtype="f16", workers=4, task_bytes=10_000).files[0]
    assert one.read_bytes() == many.read_bytes()
