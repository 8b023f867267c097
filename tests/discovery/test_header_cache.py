"""`localr1 models` reads each GGUF header once per change of the file: the facts discovery needs are cached in the
data folder by (path, size, mtime_ns)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from localr1.discovery import scan
from localr1.discovery.header_cache import cache_path
from localr1.ggufinfo import GGUFInfo, read_info
from localr1.registry import load_registry
from tests.fixtures.r1_header import r1_header_part, vocab_only_copy


@pytest.fixture(scope="module")
def r1_vocab_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real R1 7B header with no tensors (its whole tokenizer: the slow part of a read)."""
    return vocab_only_copy(r1_header_part(), tmp_path_factory.mktemp("vocab") / "r1.gguf")


@pytest.fixture
def folder(r1_vocab_file: Path, tmp_path: Path) -> Path:
    """A model folder with three copies of the R1 header."""
    root = tmp_path / "models"
    root.mkdir()
    for i in range(3):
        shutil.copyfile(r1_vocab_file, root / f"r1-copy-{i}.gguf")
    return root


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Every header discovery reads from disk (the real reader, counted)."""
    seen: list[Path] = []

    def counted(path: Path) -> GGUFInfo:
        seen.append(path)
        return read_info(path)

    monkeypatch.setattr(importlib.import_module("localr1.discovery.scan"), "read_info", counted)
    yield seen


def _listing(folder: Path) -> list[tuple[str, str | None, str, bool]]:
    found = scan(load_registry().values(), [folder])
    assert not found.warnings
    return sorted((Path(m.name).name, m.key, m.quant, m.reasoning) for m in found.models)


def test_a_second_listing_reads_no_header(folder: Path, reads: list[Path]) -> None:
    first = _listing(folder)
    assert len(reads) == 3 and [key for _, key, _, _ in first] == ["r1-qwen-7b"] * 3
    assert all(reasoning for *_, reasoning in first)
    reads.clear()
    assert _listing(folder) == first  # the same answer, from the cache
    assert reads == []


def test_a_changed_file_is_read_again(folder: Path, reads: list[Path], demo_path: Path) -> None:
    first = _listing(folder)
    reads.clear()
    touched = folder / "r1-copy-1.gguf"
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touched: same size, new mtime
    assert _listing(folder) == first
    assert reads == [touched]
    reads.clear()
    replaced = folder / "r1-copy-2.gguf"
    shutil.copyfile(demo_path, replaced)  # another model under the same name: another size
    os.utime(replaced, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime
    listed = _listing(folder)
    assert reads == [replaced]
    assert [m for m in listed if m[0] == "r1-copy-2.gguf"] == [("r1-copy-2.gguf", "demo", "Q4_1", False)]


def test_a_damaged_or_foreign_cache_is_started_afresh(folder: Path, reads: list[Path]) -> None:
    first = _listing(folder)
    reads.clear()
    for damage in ("{ not json", json.dumps({"version": 999, "files": {}}), json.dumps([1, 2]),
                   json.dumps({"version": 1, "files": {str((folder / "r1-copy-0.gguf").resolve()): {
                       "size": (folder / "r1-copy-0.gguf").stat().st_size,
                       "mtime_ns": (folder / "r1-copy-0.gguf").stat().st_mtime_ns, "facts": {"nonsense": 1}}}})):
        cache_path().write_text(damage, encoding="utf-8")
        assert _listing(folder) == first
        assert reads, damage
        reads.clear()
    assert _listing(folder) == first and reads == []  # and it was rewritten whole


def test_removed_files_leave_the_cache(folder: Path, reads: list[Path]) -> None:
    _listing(folder)
    (folder / "r1-copy-0.gguf").unlink()
    _listing(folder)
    files = json.loads(cache_path().read_text(encoding="utf-8"))["files"]
    assert sorted(Path(p).name for p in files) == ["r1-copy-1.gguf", "r1-copy-2.gguf"]
