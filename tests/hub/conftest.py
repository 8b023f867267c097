"""A fake Hub on 127.0.0.1 for each test, with HF_ENDPOINT pointing at it and a private Hub cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.hub_server import FakeHub, fake_hub


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A running fake Hub; LOCALR1_HUB_TIMEOUT keeps a hanging server's test short."""
    with fake_hub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("LOCALR1_HUB_TIMEOUT", "2")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield server


@pytest.fixture
def demo_copy(demo_path: Path, tmp_path: Path) -> Path:
    """The demo GGUF (a real 94 MB model) under this test's folder, hard-linked where possible."""
    target = tmp_path / "served" / demo_path.name
    target.parent.mkdir()
    try:
        os.link(demo_path, target)
    except OSError:
        import shutil

        shutil.copyfile(demo_path, target)
    return target


@pytest.fixture
def slice_copy(demo_path: Path, tmp_path: Path) -> Path:
    """The first 24 MiB of the demo GGUF: real bytes, quicker to serve where only the transfer is under test."""
    target = tmp_path / "served-slice" / "slice.gguf"
    target.parent.mkdir()
    with demo_path.open("rb") as src:
        target.write_bytes(src.read(24 * 1024 * 1024))
    return target
