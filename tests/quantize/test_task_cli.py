"""`localr1 eval --tasks` options and errors: one line, a non-zero exit code, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localr1.cli import build_parser
from localr1.commands.eval_tasks import _options
from localr1.engine.thinking import ThinkingControl
from quantize.quality.tasks.problems import SHIPPED_PROBLEMS
from tests.cli_helpers import localr1


def test_tasks_alone_means_the_shipped_set() -> None:
    args = build_parser().parse_args(["eval", "ladder", "--tasks", "--samples", "4", "--think-budget", "0"])
    options = _options(args, None)
    assert options.tasks is None and options.samples == 4 and options.thinking == ThinkingControl(budget_tokens=0)
    assert options.parallel == 4  # as `localr1 batch`
    assert SHIPPED_PROBLEMS.is_file()
    named = _options(build_parser().parse_args(["eval", "ladder", "--tasks", "mine.jsonl"]), ["Q8_0"])
    assert named.tasks == Path("mine.jsonl") and named.types == ["Q8_0"]
    assert build_parser().parse_args(["eval", "ladder"]).tasks is None  # without --tasks: KLD as before


def test_think_budget_takes_tokens_or_time_as_run_does() -> None:
    timed = _options(build_parser().parse_args(["eval", "ladder", "--tasks", "--think-budget", "90s", "-p", "8"]),
                     None)
    assert timed.thinking == ThinkingControl(budget_seconds=90.0) and timed.parallel == 8
    tokens = _options(build_parser().parse_args(["eval", "ladder", "--tasks", "--think-budget", "2000"]), None)
    assert tokens.thinking == ThinkingControl(budget_tokens=2000)
    assert _options(build_parser().parse_args(["eval", "ladder", "--tasks"]), None).thinking == ThinkingControl()


@pytest.mark.parametrize(("option", "value"), [("--samples", "0"), ("--samples", "many"), ("--think-budget", "-1"),
                                               ("--think-budget", "lots"), ("--parallel", "0"), ("--limit", "0"),
                                               ("--temperature", "-1"), ("--max-tokens", "0")])
def test_bad_option_values_exit_2(tmp_path: Path, option: str, value: str) -> None:
    result = localr1("eval", str(tmp_path), "--tasks", option, value)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and option in result.stderr


def test_a_bad_problem_file_fails_first_and_writes_nothing(tmp_path: Path) -> None:
    ladder = tmp_path / "ladder"
    ladder.mkdir()
    problems = tmp_path / "p.jsonl"
    problems.write_text('{"question": "2+3?", "answer": 5}\n{"question": "x", "answer": \n', encoding="utf-8")
    result = localr1("eval", str(ladder), "--tasks", str(problems))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("localr1: error: ") and result.stderr.count("\n") == 1
    assert f"{problems} line 2: not JSON" in result.stderr and "Traceback" not in result.stderr
    assert list(ladder.iterdir()) == []


def test_a_folder_without_a_ladder_is_refused(tmp_path: Path) -> None:
    problems = tmp_path / "p.jsonl"
    problems.write_text(json.dumps({"question": "2+3?", "answer": 5}) + "\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("mine")
    result = localr1("eval", str(tmp_path), "--tasks", str(problems))
    assert result.returncode == 1 and "holds no ladder (no manifest.json)" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "p.jsonl"]
