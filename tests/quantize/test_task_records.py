"""Kept answers (torn lines, damaged lines, later wins), scoring (Wilson, pass@1, majority) and the report file."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from quantize.progress import RichReporter
from quantize.quality.evaluate import ModelQuality, QualityReport
from quantize.quality.report import REPORT_NAME, accuracy_points, png_chart, read_document, write_report
from quantize.quality.tasks.evaluate import TaskReport, request_seed
from quantize.quality.tasks.problems import parse_problems
from quantize.quality.tasks.records import AnswerRecord, RecordWriter, read_records
from quantize.quality.tasks.report import interval_chart, tasks_table, write_tasks_report
from quantize.quality.tasks.score import ModelFile, score_model, wilson

RECORD = AnswerRecord(settings="s", model_sha256="m", problem="p", sample=0, model="Q8_0", answer="12",
                      thinking_tokens=3, tokens=9, seconds=1.5, stop="eos", thinking_cut_off=False, run="r",
                      created="t")


def test_records_round_trip_and_a_torn_tail_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    with RecordWriter(path) as writer:
        writer.append(RECORD)
        writer.append(replace(RECORD, sample=1, answer="ünïcode \\boxed{7}\nline"))
    with path.open("ab") as fh:
        fh.write(b'{"settings": "s", "model_sha')  # a kill inside a write
    records, bad = read_records(path)
    assert bad == 0 and [r.sample for r in records.values()] == [0, 1]
    assert records[("s", "m", "p", 1)].answer == "ünïcode \\boxed{7}\nline"
    with RecordWriter(path) as writer:  # opening to append cuts the torn tail, so the next line stands alone
        writer.append(replace(RECORD, sample=2))
    assert path.read_bytes().count(b"model_sha") == 3
    assert [r.sample for r in read_records(path)[0].values()] == [0, 1, 2]


def test_damaged_lines_are_counted_and_skipped_and_a_later_line_wins(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    with RecordWriter(path) as writer:
        writer.append(RECORD)
    with path.open("ab") as fh:
        fh.write(b"not json\n[1, 2]\n" + json.dumps({"settings": "s"}).encode() + b"\n")
    with RecordWriter(path) as writer:
        writer.append(replace(RECORD, answer="13"))
    records, bad = read_records(path)
    assert bad == 3 and list(records.values()) == [replace(RECORD, answer="13")]
    assert read_records(tmp_path / "none.jsonl") == ({}, 0)


def test_lines_written_before_the_batch_fields_still_read(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    old = {k: v for k, v in RECORD.__dict__.items() if k not in ("thinking_closed", "parallel")}
    path.write_text(json.dumps(old) + "\n" + json.dumps({**old, "sample": 1, "parallel": 3}) + "\n")
    records, bad = read_records(path)
    assert bad == 0 and records[("s", "m", "p", 0)] == RECORD  # absent: one at a time, not closed
    assert records[("s", "m", "p", 1)].parallel == 3 and not records[("s", "m", "p", 1)].thinking_closed


@pytest.mark.parametrize(("successes", "n", "interval"), [
    (0, 10, (0.0, 0.2775)), (5, 10, (0.2366, 0.7634)), (10, 10, (0.7225, 1.0)), (1, 4, (0.0456, 0.6994)),
    (81, 263, (0.2553, 0.3662)),
])
def test_wilson_against_published_values(successes: int, n: int, interval: tuple[float, float]) -> None:
    assert wilson(successes, n) == pytest.approx(interval, abs=1e-4)


def test_wilson_always_holds_the_proportion() -> None:
    """Rounding put the low bound of 0 of 3 at 5.6e-17 and the high bound of 10 of 10 at 0.9999999999999999."""
    for n in range(1, 300):
        for successes in range(n + 1):
            low, high = wilson(successes, n)
            assert 0.0 <= low <= successes / n <= high <= 1.0, (successes, n, low, high)


PROBLEMS = parse_problems(b'{"question": "a", "answer": 12}\n{"question": "b", "answer": "B"}\n'
                          b'{"question": "c", "answer": "1/2"}\n', "set")


def _answers(replies: dict[str, list[str]]) -> dict[tuple[str, int], AnswerRecord]:
    ids = {p.question: p.id for p in PROBLEMS}
    return {(ids[q], i): replace(RECORD, problem=ids[q], sample=i, answer=a, thinking_tokens=10 * i, tokens=20,
                                 seconds=2.0, thinking_cut_off=a == "")
            for q, answers in replies.items() for i, a in enumerate(answers)}


def test_pass_at_1_and_majority_by_hand() -> None:
    replies = {
        "a": ["so 13", "12", r"\boxed{12}"],  # 2 of 3 right; the majority (12) is right, not the first (13)
        "b": ["(A)", "the answer is A", "**B**"],  # 1 of 3; the majority (A) is wrong
        "c": ["0.5", "", r"\boxed{\frac{2}{3}}"],  # 1 of 3; no majority: the earliest of the tied (0.5) wins
    }
    row = score_model(ModelFile("Q8_0", "q8.gguf", "m", 100), PROBLEMS, _answers(replies), samples=3)
    assert row.accuracy == pytest.approx((2 / 3 + 1 / 3 + 1 / 3) / 3)
    assert (row.ci_low, row.ci_high) == pytest.approx(wilson(row.accuracy * 3, 3))
    assert row.majority == pytest.approx(2 / 3)
    assert row.answered == pytest.approx(8 / 9) and row.cut_off == 1
    assert row.mean_thinking_tokens == pytest.approx(10.0) and row.seconds_per_answer == 2.0
    assert row.complete


def test_a_missing_answer_counts_as_wrong() -> None:
    answers = _answers({"a": ["12"], "b": ["B"]})
    row = score_model(ModelFile("Q8_0", "q8.gguf", "m", 100), PROBLEMS, answers, samples=1)
    assert row.accuracy == pytest.approx(2 / 3) and row.answers == 2 and not row.complete
    assert row.majority is None


def test_seeds_differ_by_problem_and_sample_only() -> None:
    seeds = {request_seed(0, p.id, s) for p in PROBLEMS for s in range(3)}
    assert len(seeds) == 9 and all(0 <= s < 2**32 for s in seeds)
    assert request_seed(1, PROBLEMS[0].id, 0) != request_seed(0, PROBLEMS[0].id, 0)


def _task_report() -> TaskReport:
    row = score_model(ModelFile("Q8_0 [x]", "m-Q8_0.gguf", "m", 2_000_000), PROBLEMS,
                      _answers({"a": ["12"], "b": ["B"], "c": ["3"]}), samples=1)
    base = replace(row, name="F16 base", file="m-F16.gguf", size=4_000_000)
    return TaskReport("/x/set.jsonl", "abc", 3, 3, 1, {"temperature": 0.6}, "h", [base, row], "task-answers.jsonl")


def _kld_report() -> QualityReport:
    def q(name: str, file: str, kld: float) -> ModelQuality:
        return ModelQuality(name=name, file=file, size=2_000_000, bpw=8.5, ppl=10.0, kld_mean=kld, kld_median=kld,
                            kld_p99=kld, kld_max=kld, top1=0.9, decode_tps=None, imatrix=False)

    return QualityReport(base=q("F16 base", "m-F16.gguf", 0.0), variants=[q("Q8_0", "m-Q8_0.gguf", 0.01)],
                         heldout={"positions": 10}, settings={})


def test_quality_json_keeps_both_parts(tmp_path: Path) -> None:
    write_tasks_report(tmp_path, _task_report())  # no quality.json yet: made with the tasks section alone
    first = read_document(tmp_path)
    assert first is not None and first["tasks"]["models"][1]["accuracy"] == pytest.approx(2 / 3)
    assert "variants" not in first
    write_report(tmp_path, _kld_report())  # the KLD part written later keeps the tasks section
    both = read_document(tmp_path)
    assert both is not None and both["variants"][0]["kld_mean"] == 0.01 and both["tasks"] == first["tasks"]
    write_tasks_report(tmp_path, replace(_task_report(), problems=2))  # and the other way round
    again = json.loads((tmp_path / REPORT_NAME).read_text())
    assert again["variants"] == both["variants"] and again["tasks"]["problems"] == 2
    assert [p.name for p in accuracy_points(again)] == ["F16 base", "Q8_0 [x]"]
    chart = png_chart(_kld_report(), tmp_path / "quality.png", accuracy_points(again))
    assert chart is not None and chart.read_bytes().startswith(b"\x89PNG")


def test_table_and_interval_chart_show_names_as_they_are() -> None:
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(tasks_table(_task_report(), {"m-Q8_0.gguf": 0.0123}))
    shown = console.export_text()
    assert "Q8_0 [x]" in shown and "66.7" in shown and "0.0123" in shown and "3/3" in shown
    chart = interval_chart(_task_report())
    line = next(row for row in chart.splitlines() if row.startswith("Q8_0 [x]"))
    lo, hi = wilson(2, 3)
    bar = line.split("|")[1]
    assert len(bar) == 50 and line.endswith("| 66.7%")
    assert (bar.index("["), bar.index("●"), bar.index("]")) == (round(lo * 49), round(2 / 3 * 49), round(hi * 49))


def test_progress_bar_shows_time_left() -> None:
    out = io.StringIO()
    with RichReporter(Console(file=out, force_terminal=True, width=200)) as reporter:
        reporter.start("answering problems", 10)
        reporter.advance(5)
    assert "left" in out.getvalue()
