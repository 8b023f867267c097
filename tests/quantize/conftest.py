"""Synthetic checkpoints shared by the conversion tests, each built once per session."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.checkpoints import SyntheticSpec, llama_spec, qwen2_spec, write_checkpoint

QWEN2 = qwen2_spec(shard_bytes=120_000)
LLAMA = llama_spec()
# Large enough to shard in several files and to stream big tensors in several chunks.
QWEN2_MEDIUM = qwen2_spec(hidden_size=256, intermediate_size=768, num_layers=3, num_heads=8, num_kv_heads=2,
                          vocab_size=4096, bpe_vocab=800, shard_bytes=1_500_000, seed=3)


def _build(tmp_path_factory: pytest.TempPathFactory, name: str, spec: SyntheticSpec) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp(name) / name, spec)


@pytest.fixture(scope="session")
def qwen2_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen2-style: q/k/v biases, GQA, sharded with an index."""
    return _build(tmp_path_factory, "qwen2", QWEN2)


@pytest.fixture(scope="session")
def llama_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Llama-style: GQA and llama3 rope scaling, one safetensors file."""
    return _build(tmp_path_factory, "llama", LLAMA)


@pytest.fixture(scope="session")
def medium_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen2-style with a few MB of weights in several shards."""
    return _build(tmp_path_factory, "medium", QWEN2_MEDIUM)


@pytest.fixture
def copy_ckpt(tmp_path: Path) -> Callable[[Path], Path]:
    """Copy a session checkpoint into this test's folder, to damage it."""

    def copy(source: Path) -> Path:
        return Path(shutil.copytree(source, tmp_path / source.name))

    return copy
