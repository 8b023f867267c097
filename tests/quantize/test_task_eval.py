"""`localr1 eval LADDER --tasks` on a real demo ladder: accuracy against a hand count, samples, resume after a kill."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quantize.ladder import build_ladder
from quantize.ladder.manifest import load_manifest
from quantize.quality.evaluate import EvalOptions, base_path
from quantize.quality.report import REPORT_NAME
from quantize.quality.tasks.evaluate import settings_hash, settings_record, solve_settings
from quantize.quality.tasks.problems import problem_id
from quantize.quality.tasks.records import ANSWERS_NAME, AnswerRecord, read_records
from tests.quantize.ladder_fixtures import demo_f16_fixture, ladder_options, run_cli  # noqa: F401

pytestmark = pytest.mark.model

# Questions the demo model answers right and wrong (greedy); the test counts by hand either way.
PROBLEMS = [("What is 7 + 5?", 12), ("What is 100 + 200?", 300), ("What is 10 - 4?", 6)]
WILSON_OF_3 = {0: (0.0, 0.5615), 1: (0.0615, 0.7923), 2: (0.2077, 0.9385), 3: (0.4385, 1.0)}  # 95%, n = 3
THREADS = "2"


@pytest.fixture(scope="module")
def ladder(demo_f16: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Q8_0 and Q4_K_M of the demo base, without an importance matrix (quick to build)."""
    out = tmp_path_factory.mktemp("task-ladder")
    build_ladder(demo_f16, out, ladder_options("Q8_0,Q4_K_M", use_imatrix=False))
    return out


@pytest.fixture(scope="module")
def problems(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tasks") / "three.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in PROBLEMS), encoding="utf-8")
    return path


def _args(ladder: Path, problems: Path, *extra: str) -> list[str]:
    return ["eval", str(ladder), "--tasks", str(problems), "--temperature", "0", "--threads", THREADS, *extra]


def _digest(ladder: Path, *options: str) -> str:
    """The settings hash of a greedy run with these --max-tokens/--seed options."""
    values = dict(zip(options[::2], options[1::2], strict=True))
    task_options = EvalOptions(temperature=0.0, max_tokens=int(values["--max-tokens"]),
                               seed=int(values.get("--seed", 0)))
    manifest = load_manifest(ladder)
    assert manifest is not None
    settings = solve_settings(base_path(ladder, manifest)[0], task_options)
    return settings_hash(settings_record(settings, task_options))


def _records(ladder: Path, digest: str) -> list[AnswerRecord]:
    """The kept answers of one run's settings."""
    return [r for r in read_records(ladder / ANSWERS_NAME)[0].values() if r.settings == digest]


def _last_digits(answer: str) -> int | None:
    """The last run of digits in an answer (these answers hold no boxes, fractions or thousands)."""
    numbers = re.findall(r"\d+", answer)
    return int(numbers[-1]) if numbers else None


def _hand_judged(answer: str, expected: int) -> bool:
    return _last_digits(answer) == expected


def test_accuracy_matches_a_hand_count(ladder: Path, problems: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options = ("--max-tokens", "48")
    assert run_cli(_args(ladder, problems, *options, "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    records = _records(ladder, _digest(ladder, *options))
    assert len(records) == 3 * 3  # base + 2 variants, 3 problems, 1 sample
    expected = {problem_id(question): answer for question, answer in PROBLEMS}
    assert {r.problem for r in records} == set(expected)
    rows = {row["name"]: row for row in report["models"]}
    assert list(rows) == ["F16 base", "Q8_0", "Q4_K_M"]
    for name, row in rows.items():
        mine = [r for r in records if r.model == name]
        right = sum(_hand_judged(r.answer, expected[r.problem]) for r in mine)
        assert row["accuracy"] == pytest.approx(right / 3)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(WILSON_OF_3[right], abs=1e-3)
        assert row["answers"] == 3 and row["complete"] is True and row["samples"] == 1 and row["majority"] is None
        assert row["mean_tokens"] == pytest.approx(sum(r.tokens for r in mine) / 3)
        assert row["mean_thinking_tokens"] == 0  # the demo does not think
        assert max(r.parallel for r in mine) == 3  # the three problems ran as parallel sequences of the batch
    document = json.loads((ladder / REPORT_NAME).read_text())
    assert document["tasks"]["models"] == report["models"] and document["tasks"]["problems"] == 3
    assert (ladder / "quality.png").read_bytes().startswith(b"\x89PNG")


def test_table_and_chart_on_the_terminal(ladder: Path, problems: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(_args(ladder, problems, "--max-tokens", "48")) == 0  # every answer kept: nothing generated
    out = capsys.readouterr()
    assert "task accuracy on 3 problems of three.jsonl" in out.out and "95% CI" in out.out
    assert re.search(r"Q4_K_M\s+\|.*[●].*\| \d+\.\d%", out.out)
    assert "9 of 9 answers kept from earlier runs; 0 to give" in out.err


def test_samples_give_pass_at_1_and_majority(ladder: Path, problems: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options = ("--max-tokens", "24", "--seed", "5")
    code = run_cli(["eval", str(ladder), "--tasks", str(problems), "--limit", "1", "--samples", "3", "--types", "Q8_0",
                    "--threads", THREADS, *options, "--json"])  # the recommended temperature, three seeds
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    records = [r for r in read_records(ladder / ANSWERS_NAME)[0].values() if r.settings == report["settings_hash"]]
    assert report["samples"] == 3 and report["problems"] == 1
    assert report["settings"]["temperature"] > 0  # sampled, not greedy
    assert [row["name"] for row in report["models"]] == ["F16 base", "Q8_0"]
    for row in report["models"]:
        mine = sorted((r for r in records if r.model == row["name"]), key=lambda r: r.sample)
        assert [r.sample for r in mine] == [0, 1, 2]
        right = [_hand_judged(r.answer, 12) for r in mine]
        assert row["accuracy"] == pytest.approx(sum(right) / 3)
        votes = [_last_digits(r.answer) for r in mine]
        counted = [v for v in votes if v is not None]
        winner = max(counted, key=lambda v: (counted.count(v), -votes.index(v))) if counted else None
        assert row["majority"] == (1.0 if winner == 12 else 0.0)
        assert row["answers"] == 3


def test_resume_after_a_kill_redoes_nothing(ladder: Path, problems: Path) -> None:
    options = ("--max-tokens", "40")
    answers = ladder / ANSWERS_NAME
    digest = _digest(ladder, *options)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen([sys.executable, "-m", "localr1", *_args(ladder, problems, *options)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 300
        while len(_records(ladder, digest)) < 2 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    first = {r.key: r for r in _records(ladder, digest)}
    assert process.returncode == -signal.SIGKILL and 2 <= len(first) < 9, "the run ended before it could be killed"
    assert len({r.run for r in first.values()}) == 1
    assert all(r.parallel > 1 for r in first.values())  # finished while other sequences of the batch still ran

    with answers.open("ab") as fh:  # as if the kill had landed inside a write
        fh.write(b'{"settings": "torn')
    assert run_cli(_args(ladder, problems, *options)) == 0

    after = {r.key: r for r in _records(ladder, digest)}
    assert len(after) == 9
    assert all(after[key] == record for key, record in first.items())  # kept as they were: not asked again
    second_runs = {r.run for key, r in after.items() if key not in first}
    assert len(second_runs) == 1 and second_runs.isdisjoint({r.run for r in first.values()})
    lines = [json.loads(line) for line in answers.read_bytes().splitlines() if line.strip()]
    assert sum(line["settings"] == digest for line in lines) == 9  # one line per answer, none given twice


def test_ctrl_c_keeps_the_answers_and_says_how_to_continue(ladder: Path, problems: Path) -> None:
    options = ("--max-tokens", "30", "--seed", "9")
    digest = _digest(ladder, *options)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen([sys.executable, "-m", "localr1", *_args(ladder, problems, *options), "--limit", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 300
    while not _records(ladder, digest) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    kept = _records(ladder, digest)
    assert process.returncode == 130 and 1 <= len(kept) < 6, err
    assert f"the answers given so far are kept in {ladder / ANSWERS_NAME}" in err
    assert "run the same command again to continue" in err and "Traceback" not in err and out == ""


def _base(ladder: Path) -> Path:
    manifest = load_manifest(ladder)
    assert manifest is not None
    return base_path(ladder, manifest)[0]


class _Notes:
    """A Reporter that keeps its notes."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    def start(self, description: str, total: float) -> None:
        pass

    def advance(self, completed: float, total: float | None = None) -> None:
        pass

    def finish(self, text: str | None = None) -> None:
        pass


def test_parallel_is_lowered_before_loading_when_the_contexts_do_not_fit(ladder: Path, problems: Path) -> None:
    """256 sequences of 8192 tokens need about 48 GB of f16 KV cache for the demo: fewer run, and it says so."""
    from localr1.errors import LocalR1Error
    from localr1.loader import runtime_hardware
    from quantize.quality.tasks.evaluate import evaluate_tasks
    from quantize.quality.tasks.fit import fitting_parallel
    from quantize.quality.tasks.solver import Solver, SolveSettings

    given: list[int] = []

    def no_load(path: Path, settings: SolveSettings) -> Solver:
        given.append(settings.parallel)
        raise LocalR1Error("not loaded in this test")

    reporter = _Notes()
    options = EvalOptions(tasks=problems, samples=100, context=8192, parallel=256, max_tokens=8, temperature=0.0)
    evaluate_tasks(ladder, options, reporter, solver_factory=no_load)
    base = _base(ladder)
    fitting = given[0]  # (the free memory may change by the time this test asks the planner itself)
    assert 1 <= fitting < 256 and given == [fitting] * 3  # the base and both variants
    assert fitting_parallel(base, 8192, fitting, runtime_hardware()) >= fitting // 2
    assert f"--parallel lowered from 256 to {fitting}: 256 sequences of 8192 tokens would not fit in memory beside " \
           f"{base.name}" in reporter.notes


def test_the_planner_decides_how_many_fit(ladder: Path) -> None:
    from dataclasses import replace as changed

    from localr1.hardware import load_profile
    from localr1.plan import NoFitError
    from quantize.quality.tasks.fit import fitting_parallel

    base = _base(ladder)
    laptop = changed(load_profile("laptop-8gb"), gpus=())
    most = fitting_parallel(base, 8192, 256, laptop)
    assert 1 < most < 256 and fitting_parallel(base, 8192, most, laptop) == most
    assert fitting_parallel(base, 8192 * most, 1, laptop) == 1
    with pytest.raises(NoFitError):
        fitting_parallel(base, 8192 * (most + 1), 1, laptop)
    small = changed(laptop, ram_available=300 * 2**20)
    with pytest.raises(NoFitError, match="does not fit this machine: its smallest option"):
        fitting_parallel(base, 8192, 4, small)


def test_every_answer_wrong_still_draws_the_chart(ladder: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """0 of 3 right: the Wilson bound came out as 5.6e-17, above the accuracy, and matplotlib refused the error bar
    (a traceback after every answer was given)."""
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text("".join(json.dumps({"question": f"What is {a} + {a}?", "answer": 987654 + a}) + "\n"
                             for a in (1, 2, 3)), encoding="utf-8")
    assert run_cli(_args(ladder, wrong, "--max-tokens", "4", "--types", "Q8_0", "--json")) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["models"]}
    assert rows["Q8_0"]["accuracy"] == 0.0 and rows["Q8_0"]["ci_low"] == 0.0
    assert (ladder / "quality.png").read_bytes().startswith(b"\x89PNG")
