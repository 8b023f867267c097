"""End to end in one command: synthetic checkpoint → convert → importance matrix → ladder → eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localr1.ggufinfo import read_info
from quantize.ladder.base_gguf import base_file_name
from quantize.ladder.manifest import load_manifest
from tests.fixtures.checkpoints import qwen2_spec, write_checkpoint
from tests.quantize.ladder_fixtures import files_in, run_cli

pytestmark = pytest.mark.model
TYPES = "Q8_0,Q4_K_M,IQ4_XS,IQ2_XXS,Q2_K"


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A tiny random-weights R1-style Qwen2 checkpoint (sharded safetensors, tokenizer, R1 template)."""
    return write_checkpoint(tmp_path / "R1-Distill-Tiny", qwen2_spec(shard_bytes=200_000))


def test_one_command_from_checkpoint_to_measured_ladder(checkpoint: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ladder"
    code = run_cli(["quantize", str(checkpoint), "-o", str(out), "--types", TYPES, "--threads", "2",
                    "--speed-tokens", "8"])
    printed = capsys.readouterr().out
    assert code == 0
    names = files_in(out)
    base = out / base_file_name("f16")
    assert read_info(base).file_type == "F16"
    for qtype in TYPES.split(","):
        assert read_info(out / f"R1-Distill-Tiny-{qtype}.gguf").file_type == qtype
        assert qtype in printed
    assert {"manifest.json", "imatrix.gguf", "quality.json", "quality.png"} <= set(names)
    assert not [n for n in names if ".partial" in n]

    manifest = load_manifest(out)
    assert manifest is not None
    assert manifest.source["kind"] == "checkpoint"
    source_files = {f["name"] for f in manifest.source["files"]}
    assert {"config.json", "tokenizer.json", "model.safetensors.index.json"} <= source_files
    assert any(name.endswith(".safetensors") for name in source_files)
    assert manifest.base["converted"] and manifest.base["file"]["path"] == base.name
    assert manifest.imatrix is not None and manifest.imatrix["tokens"] > 500
    assert manifest.variants["IQ2_XXS"].imatrix_sha256 == manifest.imatrix["sha256"]

    report = json.loads((out / "quality.json").read_text())
    assert [v["name"] for v in report["variants"]] == sorted(
        TYPES.split(","), key=lambda t: -manifest.variants[t].file.size)
    assert report["base"]["name"] == "F16 base"
    for row in report["variants"]:
        assert row["kld_mean"] >= 0 and 0 <= row["top1"] <= 1 and row["ppl"] > 1
    q8 = next(v for v in report["variants"] if v["name"] == "Q8_0")
    q2 = next(v for v in report["variants"] if v["name"] == "Q2_K")
    assert q8["kld_mean"] < q2["kld_mean"]

    # a second run finds everything done, converts nothing and keeps every file
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.suffix == ".gguf"}
    assert run_cli(["quantize", str(checkpoint), "-o", str(out), "--types", TYPES, "--no-eval"]) == 0
    assert "0 built, 5 already complete" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.suffix == ".gguf"} == before


def test_eval_command_prints_table_json_and_refuses_a_foreign_directory(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ladder"
    assert run_cli(["quantize", str(checkpoint), "-o", str(out), "--types", "Q8_0,Q4_0", "--no-eval",
                    "--no-imatrix"]) == 0
    capsys.readouterr()
    assert not (out / "quality.json").exists()
    assert run_cli(["eval", str(out), "--speed-tokens", "4"]) == 0
    printed = capsys.readouterr().out
    assert "KLD" in printed and "Q4_0" in printed and f"report: {out / 'quality.json'}" in printed
    assert (out / "quality.json").exists() and (out / "quality.png").exists()
    assert run_cli(["eval", str(out), "--types", "q4_0", "--json", "--speed-tokens", "0"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [v["name"] for v in data["variants"]] == ["Q4_0"] and data["variants"][0]["decode_tps"] is None

    assert run_cli(["eval", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no ladder" in err[0]
    assert run_cli(["eval", str(out), "--types", "Q2_K"]) == 1
    assert "Q2_K not in this ladder" in capsys.readouterr().err


def test_not_enough_disk_for_the_conversion(checkpoint: Path, tmp_path: Path) -> None:
    from quantize.errors import OutputError, QuantizeError
    from quantize.ladder.builder import build_ladder
    from tests.quantize.ladder_fixtures import ladder_options

    out = tmp_path / "ladder"
    with pytest.raises((OutputError, QuantizeError), match="not enough disk space"):
        build_ladder(checkpoint, out, ladder_options("Q8_0"), free_space=lambda _p: 1000)
    assert not [n for n in files_in(out) if n.endswith(".gguf") or ".partial" in n]


def test_command_module_does_not_import_llama_cpp() -> None:
    import subprocess
    import sys

    code = "import sys, localr1.commands.quantize\nprint('llama_cpp' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
