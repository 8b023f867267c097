"""GGUF validation before llama.cpp opens a file: every bad file gets a clear one-line error."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import gguf
import numpy as np
import pytest

from localr1.engine import ChatMessage, Event, Finished, LoadParams
from localr1.engine.engine import Engine
from localr1.errors import ModelFileError
from localr1.gguf_header import read_header
from localr1.ggufinfo import read_info
from tests.conftest import GREEDY


def final(events: Iterator[Event]) -> Finished:
    """The Finished event of a stream."""
    last = list(events)[-1]
    assert isinstance(last, Finished)
    return last


def tiny_gguf(path: Path, arch: str = "llama") -> Path:
    writer = gguf.GGUFWriter(path, arch)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_demo_model_facts(demo_path: Path) -> None:
    info = read_info(demo_path)
    assert info.architecture == "llama"
    assert info.file_type == "Q4_1"
    assert info.block_count == 30 and info.embedding_length == 576
    assert info.head_count == 9 and info.head_count_kv == 3
    assert 130e6 < info.parameters < 140e6
    assert info.context_length == 8192
    assert info.template_family == "chatml" and not info.is_r1
    assert info.bos_token == "<|im_start|>" and info.eos_token == "<|im_end|>"


def test_lean_header_matches_the_gguf_library(demo_path: Path) -> None:
    reader = gguf.GGUFReader(demo_path, "r")
    header = read_header(demo_path)
    assert [t.name for t in header.tensors] == [t.name for t in reader.tensors]
    for ours, theirs in zip(header.tensors, reader.tensors, strict=True):
        assert ours.n_bytes == int(theirs.n_bytes)
        assert header.data_start + ours.offset == int(theirs.data_offset)
    tokens = reader.fields["tokenizer.ggml.tokens"]
    assert [t.decode() for t in header.string_arrays["tokenizer.ggml.tokens"][:50]] == [
        tokens.contents(i) for i in range(50)
    ]


def bad_files(tmp: Path, demo: Path) -> dict[str, tuple[Path, str]]:
    missing = tmp / "nope.gguf"
    magic = tmp / "magic.gguf"
    magic.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    version = tmp / "version.gguf"
    version.write_bytes(b"GGUF" + (99).to_bytes(4, "little") + b"\0" * 100)
    truncated = tmp / "truncated.gguf"
    with demo.open("rb") as src, truncated.open("wb") as dst:
        dst.write(src.read(demo.stat().st_size // 2))
    header_cut = tmp / "header.gguf"
    with demo.open("rb") as src, header_cut.open("wb") as dst:
        dst.write(src.read(5000))
    unknown = tiny_gguf(tmp / "arch.gguf", arch="frobnicator")
    empty = tmp / "empty.gguf"
    empty.write_bytes(b"")
    return {
        "missing": (missing, "model file not found"),
        "magic": (magic, "not a GGUF file"),
        "version": (version, "unsupported GGUF version 99"),
        "truncated": (truncated, "truncated GGUF file"),
        "header": (header_cut, "corrupt or truncated GGUF header"),
        "arch": (unknown, "unknown model architecture 'frobnicator'"),
        "empty": (empty, "not a GGUF file"),
    }


@pytest.mark.parametrize("case", ["missing", "magic", "version", "truncated", "header", "arch", "empty"])
def test_bad_file_is_rejected_before_llama_cpp(case: str, tmp_path: Path, demo_path: Path) -> None:
    path, message = bad_files(tmp_path, demo_path)[case]
    with pytest.raises(ModelFileError, match=message) as err:
        Engine(path, LoadParams(), GREEDY)
    assert "\n" not in str(err.value)


@pytest.mark.model
def test_valid_copy_still_loads(tmp_path: Path, demo_path: Path, engine: Engine) -> None:
    """The checks pass a valid file, and llama.cpp then loads it and answers as from the original."""
    copy = tmp_path / "copy.gguf"
    shutil.copy(demo_path, copy)
    assert read_info(copy).architecture == "llama"
    messages = [ChatMessage("user", "Name a colour.")]
    sampling = replace(GREEDY, max_tokens=6)
    original = final(engine.chat(messages, sampling))
    loaded = Engine(copy, LoadParams(context_size=1024, seed=1), GREEDY)
    try:
        again = final(loaded.chat(messages, sampling))
    finally:
        loaded.close()
    assert again.stats.generated_tokens == original.stats.generated_tokens > 0
    assert again.answer == original.answer and again.answer.strip()
