"""Every numeric option of every command is validated: a bad value is one line naming the option, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from localr1.cli import build_parser, main
from tests.cli_helpers import localr1

# (command line before the option, option, bad values)
COMMANDS = {
    "run": ["run", "hi"],
    "chat": ["chat"],
    "convert": ["convert", "/nonexistent/ckpt", "-o", "/nonexistent/out.gguf"],
    "quantize": ["quantize", "/nonexistent/src.gguf", "-o", "/nonexistent/out"],
    "eval": ["eval", "/nonexistent/out"],
}
BAD = [
    ("run", "--ctx", ["0", "63", "-4096", "4k", "1e3"]),
    ("run", "--threads", ["-1", "1.5", "5000"]),
    ("run", "--gpu-layers", ["-2", "many"]),
    ("run", "--max-tokens", ["0", "-5", "ten"]),
    ("run", "-n", ["0", "-5"]),
    ("run", "--temperature", ["-1", "-0.01", "nan", "inf", "hot"]),
    ("run", "-t", ["-1"]),
    ("run", "--top-p", ["0", "-0.1", "1.01", "nan"]),
    ("run", "--top-k", ["-1", "2.5"]),
    ("run", "--seed", ["-1", "4294967296", "lucky"]),
    ("chat", "--ctx", ["0", "-1", "32"]),
    ("convert", "--split-max-size", ["0", "-2G", "inf", "nan", "lots"]),
    ("quantize", "--threads", ["-1"]),
    ("quantize", "--calibration-tokens", ["0", "-10"]),
    ("quantize", "--calibration-ctx", ["0", "1", "15"]),
    ("quantize", "--eval-ctx", ["0", "1"]),
    ("quantize", "--top-k", ["0", "-1"]),
    ("quantize", "--speed-tokens", ["-1"]),
    ("eval", "--threads", ["-3"]),
    ("eval", "--eval-ctx", ["0", "8"]),
    ("eval", "--top-k", ["0"]),
    ("eval", "--speed-tokens", ["-64"]),
]
CASES = [(command, option, value) for command, option, values in BAD for value in values]


@pytest.mark.parametrize(("command", "option", "value"), CASES, ids=[f"{c} {o} {v}" for c, o, v in CASES])
def test_bad_value_is_one_line_naming_the_option(command: str, option: str, value: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*COMMANDS[command], f"{option}={value}"])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"localr1 {command}: error: argument ") and option in lines[0]
    assert f"got {value!r}" in lines[0] or f"size {value!r}" in lines[0]  # the value as given
    assert captured.out == ""


def test_the_console_script_says_the_same() -> None:
    result = localr1("run", "-n", "0", "hi")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == ("localr1 run: error: argument --max-tokens/-n: must be a whole number of tokens, "
                                     "at least 1, got '0' (see localr1 run --help)")
    result = localr1("run", "-t", "-1", "hi")
    assert result.returncode == 2 and "argument --temperature/-t: must be a number from 0" in result.stderr


def test_other_usage_errors_are_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["run"], ["quantize"], ["frobnicate"], ["run", "hi", "--no-such-option"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and ": error: " in lines[0] and "--help" in lines[0], lines


def test_the_edges_of_each_range_are_accepted() -> None:
    parser = build_parser()
    args = parser.parse_args(["run", "hi", "--ctx", "64", "--threads", "0", "--gpu-layers", "-1", "-n", "1",
                              "-t", "0", "--top-p", "1", "--top-k", "0", "--seed", "0"])
    assert (args.ctx, args.threads, args.gpu_layers, args.max_tokens) == (64, 0, -1, 1)
    assert (args.temperature, args.top_p, args.top_k, args.seed) == (0.0, 1.0, 0, 0)
    assert parser.parse_args(["run", "hi", "--seed", "4294967295", "--top-p", "0.001"]).seed == 2**32 - 1
    args = parser.parse_args(["quantize", "src", "-o", "out", "--calibration-tokens", "1", "--calibration-ctx", "16",
                              "--eval-ctx", "16", "--top-k", "1", "--speed-tokens", "0"])
    assert (args.calibration_tokens, args.calibration_ctx, args.eval_ctx, args.top_k) == (1, 16, 16, 1)
    split = parser.parse_args(["convert", "c", "-o", "o.gguf", "--split-max-size", "1.5G"]).split_max_size
    assert split == 1_500_000_000
    assert parser.parse_args(["chat", "--ctx", "8192"]).ctx == 8192


def test_the_default_ladder_is_the_documented_one() -> None:
    from quantize.ladder.qtypes import parse_types

    args = build_parser().parse_args(["quantize", "source.gguf", "-o", "out"])
    documented = "Q8_0,Q6_K,Q5_K_M,Q4_K_M,IQ4_XS,Q3_K_M,Q2_K"  # README: "Converting and quantizing a model"
    assert args.types == documented
    assert [t.name for t in parse_types(args.types)] == documented.split(",")
    assert f"--types {documented}" in Path(__file__).parents[1].joinpath("README.md").read_text()
