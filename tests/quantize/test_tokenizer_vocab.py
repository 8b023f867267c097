"""tokenizer.json -> GGUF vocabulary: pre-tokenizer detection, token types, padding, special ids, template."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from quantize.convert.tokenizer import (
    EXPANDED_CONTRACTIONS,
    LLAMA3_PATTERN,
    QWEN2_PATTERN,
    detect_pre_tokenizer,
    load_vocab,
)
from quantize.errors import CheckpointError, UnsupportedModelError
from tests.fixtures.checkpoints import BOS, EOS, PAD
from tests.quantize.conftest import QWEN2
from tests.quantize.helpers import edit_json

CopyCkpt = Callable[[Path], Path]


def split_then_bytes(pattern: str) -> dict[str, Any]:
    return {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}}


def test_pre_tokenizer_names() -> None:
    assert detect_pre_tokenizer(split_then_bytes(QWEN2_PATTERN)) == "qwen2"
    assert detect_pre_tokenizer(split_then_bytes(LLAMA3_PATTERN)) == "llama-bpe"
    expanded = LLAMA3_PATTERN.replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", EXPANDED_CONTRACTIONS)
    assert detect_pre_tokenizer(split_then_bytes(expanded)) == "llama-bpe"
    gpt2 = {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}}
    assert detect_pre_tokenizer(gpt2) == "gpt-2"


def test_unknown_pre_tokenizer_is_refused() -> None:
    with pytest.raises(UnsupportedModelError, match=r"unknown pre-tokenizer split .*supported: Qwen2's"):
        detect_pre_tokenizer(split_then_bytes(r"\p{L}+|\p{N}+"))
    with pytest.raises(UnsupportedModelError, match="not a byte-level BPE"):
        detect_pre_tokenizer({"pre_tokenizer": {"type": "Metaspace"}})


def test_the_fixtures_carry_the_real_split_rules(qwen2_ckpt: Path, llama_ckpt: Path) -> None:
    for ckpt, pattern in ((qwen2_ckpt, QWEN2_PATTERN), (llama_ckpt, LLAMA3_PATTERN)):
        data = json.loads((ckpt / "tokenizer.json").read_text())
        assert data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == pattern


def test_vocab_ids_types_and_padding(qwen2_ckpt: Path) -> None:
    vocab = load_vocab(qwen2_ckpt, QWEN2.vocab_size)
    assert len(vocab.tokens) == QWEN2.vocab_size > vocab.n_real_tokens
    assert vocab.tokens[vocab.bos_id or 0] == BOS and vocab.tokens[vocab.eos_id or 0] == EOS
    assert vocab.tokens[vocab.pad_id or 0] == PAD
    assert vocab.add_bos and not vocab.add_eos and vocab.pre == "qwen2"
    assert vocab.chat_template is not None and "<think>" in vocab.chat_template


def test_vocab_larger_than_the_embedding_is_refused(qwen2_ckpt: Path) -> None:
    with pytest.raises(CheckpointError, match="the embedding cannot hold them"):
        load_vocab(qwen2_ckpt, 100)


def test_special_tokens_fall_back_to_generation_config(copy_ckpt: CopyCkpt, llama_ckpt: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    config = json.loads((ckpt / "tokenizer_config.json").read_text())
    for key in ("bos_token", "eos_token", "pad_token"):
        del config[key]
    (ckpt / "tokenizer_config.json").write_text(json.dumps(config))
    vocab = load_vocab(ckpt, 640, {"bos_token_id": 7, "eos_token_id": [9, 10]})
    assert (vocab.bos_id, vocab.eos_id) == (7, 9)
    assert vocab.tokens[vocab.pad_id or 0] == PAD  # found by its text


def test_unknown_special_token_is_refused(copy_ckpt: CopyCkpt, llama_ckpt: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    edit_json(ckpt / "tokenizer_config.json", eos_token="<|not here|>")
    with pytest.raises(CheckpointError, match=re.escape("eos_token '<|not here|>' is not in the vocabulary")):
        load_vocab(ckpt, 640)


def test_template_sources(copy_ckpt: CopyCkpt, llama_ckpt: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    edit_json(ckpt / "tokenizer_config.json", chat_template=[{"name": "tool_use", "template": "T"},
                                                             {"name": "default", "template": "D"}])
    assert load_vocab(ckpt, 640).chat_template == "D"
    edit_json(ckpt / "tokenizer_config.json", chat_template=None)
    (ckpt / "chat_template.jinja").write_text("J")
    assert load_vocab(ckpt, 640).chat_template == "J"


def test_missing_tokenizer_json(copy_ckpt: CopyCkpt, llama_ckpt: Path) -> None:
    ckpt = copy_ckpt(llama_ckpt)
    (ckpt / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match=r"tokenizer.json not found"):
        load_vocab(ckpt, 640)
