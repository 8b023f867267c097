"""`localr1 rm` with a name that is really a path: nothing outside the models folder is ever removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from localr1.paths import data_dir, models_dir
from tests.cli_helpers import localr1


@pytest.mark.parametrize("name", ["..", ".", "", "../..", "ABSOLUTE"])
def test_rm_of_a_path_removes_nothing(name: str, tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "notes.txt").write_text("mine", encoding="utf-8")
    installed = models_dir() / "other-model"
    installed.mkdir(parents=True)
    (installed / "model.gguf").write_bytes(b"GGUF")
    conversations = data_dir() / "conversations.db"
    conversations.write_bytes(b"SQLite format 3\0")
    name = str(outside) if name == "ABSOLUTE" else name
    result = localr1("rm", name)
    assert result.returncode == 1 and "is not a model name" in result.stderr, result.stderr + result.stdout
    assert (outside / "sub" / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert (installed / "model.gguf").exists() and conversations.exists()
