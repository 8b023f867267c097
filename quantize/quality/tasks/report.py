"""Task accuracy in the quality report: the `tasks` section of quality.json, a terminal table and an interval chart.

The section sits beside the KLD measurements of the same file (format and version unchanged: readers that do
not know it ignore it); the planner reads it to prefer measured accuracy over KLD.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from quantize.ladder.manifest import now, write_json_atomic
from quantize.outlock import locked_dir
from quantize.quality.report import (
    REPORT_FORMAT,
    REPORT_NAME,
    TASKS_KEY,
    AccuracyPoint,
    machine_info,
    read_document,
)
from quantize.quality.tasks.evaluate import TaskReport
from quantize.quality.tasks.score import ModelAccuracy


def tasks_json(report: TaskReport) -> dict[str, Any]:
    """The `tasks` section: the problem set, the generation settings, and one row per model."""
    return {
        "source": report.source, "sha256": report.sha256, "problems": report.problems,
        "problems_in_file": report.problems_in_file, "samples": report.samples, "settings": report.settings,
        "settings_hash": report.settings_hash, "answers_file": report.answers_file, "created": report.created,
        "confidence": 0.95, "interval": "wilson",
        "models": [{**asdict(m), "complete": m.complete} for m in report.models],
    }


def write_tasks_report(out_dir: Path, report: TaskReport) -> Path:
    """Put the `tasks` section into OUT_DIR's quality.json (made if absent, KLD part kept), atomically, holding
    OUT_DIR's run lock."""
    path = out_dir / REPORT_NAME
    with locked_dir(out_dir, create=False, alternative=None):
        document = read_document(out_dir) or {"format": REPORT_FORMAT, "version": 1, "created": now()}
        document[TASKS_KEY] = tasks_json(report)
        document.setdefault("machine", machine_info())
        write_json_atomic(path, document)
    return path


def points(report: TaskReport) -> list[AccuracyPoint]:
    """The rows as chart points."""
    return [AccuracyPoint(m.name, m.size, m.accuracy, m.ci_low, m.ci_high) for m in report.models]


def kld_by_file(document: dict[str, Any] | None) -> dict[str, float]:
    """Mean KLD per file name from a quality.json document (the base counts as 0)."""
    found: dict[str, float] = {}
    base = (document or {}).get("base")
    if isinstance(base, dict) and isinstance(base.get("file"), str):
        found[Path(base["file"]).name] = 0.0
    for row in (document or {}).get("variants") or []:
        if isinstance(row, dict) and isinstance(row.get("file"), str) and isinstance(row.get("kld_mean"), int | float):
            found[Path(row["file"]).name] = float(row["kld_mean"])
    return found


def _pct(value: float) -> str:
    return f"{value * 100:.1f}"


def _row(m: ModelAccuracy, kld: dict[str, float]) -> list[str]:
    row = [
        m.name, f"{m.size / 1e6:,.1f}", _pct(m.accuracy), f"{_pct(m.ci_low)}-{_pct(m.ci_high)}",
    ]
    if m.majority is not None:
        row.append(_pct(m.majority))
    known = kld.get(m.file)
    row += [
        _pct(m.answered), str(m.cut_off), f"{m.mean_thinking_tokens:.0f}", f"{m.seconds_per_answer:.1f}",
        "-" if known is None else f"{known:.4f}",
        f"{m.answers}/{m.problems * m.samples}",
    ]
    return row


def _headers(samples: int) -> list[str]:
    accuracy = "pass@1 %" if samples > 1 else "acc %"
    majority = ["maj %"] if samples > 1 else []
    return ["model", "MB", accuracy, "95% CI", *majority, "found %", "cut", "think", "s/ans", "KLD", "answers"]


HEADER_NOTE = ("found: answers with a final answer found; cut: answers a token limit or the thinking budget ended "
               "while thinking; think: mean thinking tokens; s/ans: seconds per answer; KLD: mean KL divergence "
               "from 'localr1 eval' without --tasks")


def tasks_table(report: TaskReport, kld: dict[str, float] | None = None) -> Table:
    """The accuracy of every model as a rich table, the base first; every cell is plain text."""
    samples = f", {report.samples} samples each" if report.samples > 1 else ""
    title = Text(f"task accuracy on {report.problems} problems of {Path(report.source).name}{samples}")
    table = Table(*_headers(report.samples), title=title)
    for column in table.columns[1:]:
        column.justify = "right"
    for m in report.models:
        table.add_row(*(Text(cell) for cell in _row(m, kld or {})))
    return table


def markdown_table(report: TaskReport, kld: dict[str, float] | None = None) -> str:
    """The same table in Markdown (for benchmarks/RESULTS.md)."""
    headers = _headers(report.samples)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_row(m, kld or {})) + " |" for m in report.models]
    return "\n".join(lines)


def interval_chart(report: TaskReport, width: int = 50) -> str:
    """Each model's accuracy (●) and 95% interval ([---]) on a 0-100% scale, drawn with characters."""
    label = max(len(m.name) for m in report.models)
    lines = [" " * label + "  0%" + " " * (width - 6) + "100%"]
    for m in report.models:
        cells = [" "] * width
        low, high, mid = (round(v * (width - 1)) for v in (m.ci_low, m.ci_high, m.accuracy))
        for i in range(low, high + 1):
            cells[i] = "-"
        cells[low], cells[high] = "[", "]"
        cells[mid] = "●"
        lines.append(f"{m.name.ljust(label)} |{''.join(cells)}| {_pct(m.accuracy)}%")
    return "\n".join(lines)
