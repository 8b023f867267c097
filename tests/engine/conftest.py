"""Engine test fixtures: llama.cpp vocabularies loaded alone (the demo's and the real R1 7B's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.vocab_file import VocabFile


@pytest.fixture(scope="session")
def demo_vocab(demo_path: Path) -> Iterator[VocabFile]:
    """The demo model's vocabulary (SmolLM2, byte-level BPE of 49,152 tokens)."""
    with VocabFile(demo_path) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def r1_vocab(r1_vocab_path: Path) -> Iterator[VocabFile]:
    """The real DeepSeek-R1-Distill-Qwen-7B vocabulary (152,064 tokens), from the vocab-only copy of its header."""
    with VocabFile(r1_vocab_path) as loaded:
        yield loaded
