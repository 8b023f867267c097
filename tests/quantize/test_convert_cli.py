"""`localr1 convert` / `localr1 verify` as registered by add_convert_parsers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from localr1.commands.convert import add_convert_parsers
from quantize.errors import ConversionError, OutputError
from quantize.sizes import parse_size


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="localr1")
    add_convert_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


@pytest.mark.model
def test_convert_with_verify(llama_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "llama.gguf"
    assert run("convert", str(llama_ckpt), "-o", str(out), "--outtype", "f32", "--verify") == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: llama 181K F32" in printed
    assert "ok   tokenizer" in printed and "ok   logits" in printed and "ok   template" in printed


@pytest.mark.model
def test_convert_with_progress_bar_and_split(qwen2_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "qwen2.gguf"
    assert run("convert", str(qwen2_ckpt), "-o", str(out), "--split-max-size", "0.2M") == 0
    shards = sorted(tmp_path.glob("qwen2-*.gguf"))
    assert len(shards) == 2 and not out.exists()
    assert run("verify", str(qwen2_ckpt), str(shards[0])) == 0


@pytest.mark.model
def test_verify_json_and_failure(qwen2_ckpt: Path, llama_ckpt: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "llama.gguf"
    run("convert", str(llama_ckpt), "-o", str(out), "--no-progress")
    capsys.readouterr()
    assert run("verify", str(llama_ckpt), str(out), "--json", "--kv-type", "f16") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and [c["name"] for c in report["checks"]] == ["tokenizer", "logits", "template"]
    assert 0 < report["checks"][1]["max_rel_diff"] < 5e-3
    assert run("verify", str(qwen2_ckpt), str(out)) == 1  # another model's checkpoint
    assert "FAIL" in capsys.readouterr().out


def test_errors_are_user_errors(llama_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "llama.gguf"
    out.write_bytes(b"x")
    with pytest.raises(OutputError, match="--force"):
        run("convert", str(llama_ckpt), "-o", str(out), "--no-progress")
    with pytest.raises(SystemExit) as exited:  # refused by argparse, before any work
        run("convert", str(llama_ckpt), "-o", str(out), "--split-max-size", "lots")
    assert exited.value.code == 2


@pytest.mark.parametrize("text", ["lots", "0", "-2G", "nan", "inf", "1e400", ""])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ConversionError, match="size"):
        parse_size(text)


def test_parse_size() -> None:
    assert parse_size("2G") == 2_000_000_000 and parse_size("500M") == 500_000_000
    assert parse_size("1.5gb") == 1_500_000_000 and parse_size("4096") == 4096
