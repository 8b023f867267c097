"""The quality report: a terminal table, quality.json next to the manifest, and a size-vs-KLD chart (PNG and text).

quality.json may also hold a `tasks` section (task accuracy, written by `quality.tasks`): rewriting the KLD part
keeps it, and the PNG chart draws it as a second panel.
"""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from localr1.oserrors import os_errors
from quantize.ladder.manifest import now, partial_path, write_json_atomic
from quantize.outlock import locked_dir
from quantize.quality.evaluate import ModelQuality, QualityReport

REPORT_NAME = "quality.json"
CHART_NAME = "quality.png"
REPORT_FORMAT = "localr1.quality-report"
TASKS_KEY = "tasks"


@dataclass(frozen=True)
class AccuracyPoint:
    """One model's task accuracy with its 95% interval, as drawn in the chart."""

    name: str
    size: int
    accuracy: float
    low: float
    high: float


def machine_info() -> dict[str, Any]:
    """CPU model and count of this machine, recorded with speed figures."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "system": platform.system()}


def report_json(report: QualityReport) -> dict[str, Any]:
    """The document the planner reads: base and variants with every measure, plus how they were measured."""
    return {
        "format": REPORT_FORMAT, "version": 1, "created": now(),
        "base": asdict(report.base), "variants": [asdict(v) for v in report.variants],
        "heldout": report.heldout, "settings": report.settings, "llama_cpp": report.llama_cpp,
        "machine": report.machine or machine_info(),
    }


def read_document(out_dir: Path) -> dict[str, Any] | None:
    """OUT_DIR's quality.json when it is one of ours; None when absent or unreadable."""
    try:
        data = json.loads((out_dir / REPORT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == REPORT_FORMAT else None


def write_report(out_dir: Path, report: QualityReport) -> Path:
    """Write quality.json atomically next to the manifest (keeping its task accuracy), holding OUT_DIR's run lock."""
    path = out_dir / REPORT_NAME
    with locked_dir(out_dir, create=False, alternative=None):
        document = report_json(report)
        tasks = (read_document(out_dir) or {}).get(TASKS_KEY)
        if isinstance(tasks, dict):
            document[TASKS_KEY] = tasks
        write_json_atomic(path, document)
    return path


def report_from_document(document: dict[str, Any] | None) -> QualityReport | None:
    """The KLD report kept in a quality.json document; None when it has none (or a damaged one)."""
    if not document:
        return None
    try:
        base = ModelQuality(**document["base"])
        variants = [ModelQuality(**row) for row in document["variants"]]
    except (KeyError, TypeError):
        return None
    return QualityReport(base=base, variants=variants, heldout=document.get("heldout") or {},
                         settings=document.get("settings") or {})


def accuracy_points(document: dict[str, Any] | None) -> list[AccuracyPoint]:
    """The task accuracy rows of a quality.json document (none when it has no valid tasks section)."""
    tasks = (document or {}).get(TASKS_KEY)
    rows = tasks.get("models") if isinstance(tasks, dict) else None
    points = []
    for row in rows if isinstance(rows, list) else []:
        try:
            points.append(AccuracyPoint(str(row["name"]), int(row["size"]), float(row["accuracy"]),
                                        float(row["ci_low"]), float(row["ci_high"])))
        except (KeyError, TypeError, ValueError):
            continue
    return points


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f}"


def _tps(value: float | None) -> str:
    return f"{value:.1f}" if value else "-"


def _row(q: ModelQuality, base: ModelQuality) -> list[str]:
    is_base = q is base
    return [
        q.name, _mb(q.size), f"{q.bpw:.2f}", f"{q.ppl:.3f}",
        "-" if is_base else f"{q.kld_mean:.4f}", "-" if is_base else f"{q.kld_p99:.4f}",
        "-" if is_base else f"{q.top1 * 100:.1f}", _tps(q.decode_tps),
        "" if is_base else ("yes" if q.imatrix else "no"),
    ]


HEADERS = ["type", "MB", "bpw", "PPL", "KLD mean", "KLD p99", "top-1 %", "tok/s", "imat"]


def quality_table(report: QualityReport) -> Table:
    """The report as a rich table, largest file first, the base on top; every cell is plain text, never markup."""
    title = Text(f"quality vs base on {report.heldout.get('positions', '?')} held-out positions")
    table = Table(*HEADERS, title=title)
    for column in table.columns[1:8]:
        column.justify = "right"
    for q in [report.base, *report.variants]:
        table.add_row(*(Text(cell) for cell in _row(q, report.base)))
    return table


def markdown_table(report: QualityReport) -> str:
    """The same table in Markdown (for benchmarks/RESULTS.md)."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for q in [report.base, *report.variants]:
        lines.append("| " + " | ".join(_row(q, report.base)) + " |")
    return "\n".join(lines)


def text_chart(report: QualityReport, width: int = 56, height: int = 14) -> str:
    """Size (x) against mean KL divergence (y, log scale) drawn with characters; one digit per variant."""
    points = [(v.size / 1e6, max(v.kld_mean, 1e-6), v.name) for v in report.variants]
    if not points:
        return "(no variants)"
    xs, ys = [p[0] for p in points], [math.log10(p[1]) for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = math.floor(min(ys) * 2) / 2, math.ceil(max(ys) * 2) / 2
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 0.5)
    grid = [[" "] * width for _ in range(height)]
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        col = round((x - x0) / (x1 - x0) * (width - 1))
        row = height - 1 - round((y - y0) / (y1 - y0) * (height - 1))
        grid[row][col] = str(i + 1) if i < 9 else chr(ord("a") + i - 9)
    lines = []
    for r, cells in enumerate(grid):
        value = y1 - (y1 - y0) * r / (height - 1)
        label = f"{10 ** value:8.4f}" if r in (0, height // 2, height - 1) else " " * 8
        lines.append(f"{label} |" + "".join(cells))
    lines.append(" " * 9 + "+" + "-" * width)
    lines.append(" " * 10 + f"{x0:.1f} MB".ljust(width - 10) + f"{x1:.1f} MB")
    lines.append("mean KLD (log) vs file size:  " +
                 "  ".join(f"{(str(i + 1) if i < 9 else chr(ord('a') + i - 9))}={p[2]}" for i, p in enumerate(points)))
    return "\n".join(lines)


def _kld_panel(ax: Any, report: QualityReport) -> None:
    from matplotlib.lines import Line2D

    for i, v in enumerate(sorted(report.variants, key=lambda r: r.size)):
        marker = "o" if v.imatrix else "s"
        ax.scatter(v.size / 1e6, max(v.kld_mean, 1e-6), marker=marker, color="tab:blue")
        # alternate label sides so that neighbours of similar size do not overprint each other
        ax.annotate(v.name, (v.size / 1e6, max(v.kld_mean, 1e-6)), textcoords="offset points",
                    xytext=(5, 5) if i % 2 == 0 else (5, -11), fontsize=8, parse_math=False)
    handles = [Line2D([], [], marker=m, linestyle="", color="tab:blue", label=label)
               for m, label in (("o", "with importance matrix"), ("s", "without"))]
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    ax.set_yscale("log")
    ax.set_xlabel("file size (MB)")
    ax.set_ylabel("mean KL divergence vs base (log)")
    ax.grid(True, which="both", alpha=0.3)


def _accuracy_panel(ax: Any, points: list[AccuracyPoint]) -> None:
    for i, p in enumerate(sorted(points, key=lambda p: p.size)):
        x, y = p.size / 1e6, p.accuracy * 100
        ax.errorbar(x, y, yerr=[[y - p.low * 100], [p.high * 100 - y]], fmt="o", color="tab:green", capsize=3)
        ax.annotate(p.name, (x, y), textcoords="offset points", xytext=(5, 5) if i % 2 == 0 else (5, -11),
                    fontsize=8, parse_math=False)
    ax.set_ylim(0, 100)
    ax.set_xlabel("file size (MB)")
    ax.set_ylabel("task accuracy % (95% interval)")
    ax.grid(True, alpha=0.3)


def png_chart(report: QualityReport | None, path: Path, accuracy: list[AccuracyPoint] | None = None,
              title: str | None = None) -> Path | None:
    """Size vs mean KLD (log scale) and, with task accuracy, size vs accuracy beside it, as a PNG; None when
    matplotlib is not installed or there is nothing to draw."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = int(bool(report and report.variants)) + int(bool(accuracy))
    if not panels:
        return None
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 4.5), dpi=120, squeeze=False)
    if report and report.variants:
        _kld_panel(axes[0][0], report)
    if accuracy:
        _accuracy_panel(axes[0][-1], accuracy)
    name = title or (Path(report.base.file).name if report else path.parent.name)
    fig.suptitle(f"{name}: size vs quality", parse_math=False)  # a "$" in a name is text
    fig.tight_layout()
    temp = partial_path(path)
    try:
        with os_errors("write", path):
            fig.savefig(temp, format="png")
            temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path
