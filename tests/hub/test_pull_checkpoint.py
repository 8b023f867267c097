"""`localr1 pull --source checkpoint`: the safetensors checkpoint from the local Hub server (never a pickle file),
then the local pipeline (convert, importance matrix, ladder, quality report) into the model's folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localr1.cli import main
from localr1.ggufinfo import read_info
from localr1.paths import models_dir
from localr1.pulled import load_record
from localr1.registry import resolve_model, user_models_path
from tests.fixtures.checkpoints import qwen2_spec, write_checkpoint
from tests.fixtures.hub_server import FakeHub

pytestmark = pytest.mark.model
SPEC = qwen2_spec(shard_bytes=200_000)
ENTRY = f"""
[models.tiny-r1]
display_name = "Tiny-R1"
hf_repo = "test-org/Tiny-R1"
architecture = "qwen2"
reasoning = true
layers = {SPEC.num_layers}
hidden_size = {SPEC.hidden_size}
intermediate_size = {SPEC.intermediate_size}
attention_heads = {SPEC.num_heads}
kv_heads = {SPEC.num_kv_heads}
head_dim = {SPEC.head_dim}
vocab_size = {SPEC.vocab_size}
context_length = 4096
license = "mit"
"""


def test_a_checkpoint_pull_ends_in_an_installed_ladder(hub: FakeHub, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = write_checkpoint(tmp_path / "Tiny-R1", SPEC)
    (checkpoint / "pytorch_model.bin").write_bytes(b"pickle: never downloaded")
    (checkpoint / "README.md").write_text("card", encoding="utf-8")
    hub.add_repo("test-org/Tiny-R1", {p.name: p for p in checkpoint.iterdir() if p.is_file()})
    user_models_path().parent.mkdir(parents=True, exist_ok=True)
    user_models_path().write_text(ENTRY, encoding="utf-8")

    assert main(["pull", "tiny-r1", "--source", "checkpoint", "--quant", "Q8_0,Q4_K_M"]) == 0
    out = models_dir() / "tiny-r1"
    assert read_info(out / "Tiny-R1-Q8_0.gguf").file_type == "Q8_0"
    assert read_info(out / "Tiny-R1-Q4_K_M.gguf").file_type == "Q4_K_M"
    assert {"manifest.json", "imatrix.gguf", "quality.json"} <= {p.name for p in out.iterdir()}
    assert {v["name"] for v in json.loads((out / "quality.json").read_text())["variants"]} == {"Q8_0", "Q4_K_M"}
    fetched = [path for method, path, _h in hub.requests if method == "GET"]
    assert not any("pytorch_model.bin" in p or "README" in p for p in fetched)
    record = load_record("tiny-r1")["pulls"][0]
    assert record["source"] == "checkpoint" and record["commit"] == hub.repos["test-org/Tiny-R1"].commit
    assert {f["name"] for f in record["files"]} >= {"config.json", "tokenizer.json", "model.safetensors.index.json"}
    assert resolve_model("tiny-r1").path == out

    capsys.readouterr()
    assert main(["pull", "tiny-r1", "--source", "checkpoint", "--quant", "Q8_0,Q4_K_M", "--no-eval"]) == 0
    assert "0 built, 2 already complete" in capsys.readouterr().err  # a second run resumes: nothing redone

    assert main(["rm", "tiny-r1"]) == 0
    assert not out.exists()
