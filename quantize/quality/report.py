"""The quality report: a terminal table, quality.json next to the manifest, and a size-vs-KLD chart (PNG and text)."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import asdict
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


def write_report(out_dir: Path, report: QualityReport) -> Path:
    """Write quality.json atomically next to the manifest, holding OUT_DIR's run lock."""
    path = out_dir / REPORT_NAME
    with locked_dir(out_dir, create=False, alternative=None):
        write_json_atomic(path, report_json(report))
    return path


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


def png_chart(report: QualityReport, path: Path) -> Path | None:
    """Size vs mean KLD (log scale) as a PNG; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for i, v in enumerate(sorted(report.variants, key=lambda r: r.size)):
        marker = "o" if v.imatrix else "s"
        ax.scatter(v.size / 1e6, max(v.kld_mean, 1e-6), marker=marker, color="tab:blue")
        # alternate label sides so that neighbours of similar size do not overprint each other
        ax.annotate(v.name, (v.size / 1e6, max(v.kld_mean, 1e-6)), textcoords="offset points",
                    xytext=(5, 5) if i % 2 == 0 else (5, -11), fontsize=8, parse_math=False)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker=m, linestyle="", color="tab:blue", label=label)
               for m, label in (("o", "with importance matrix"), ("s", "without"))]
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    ax.set_yscale("log")
    ax.set_xlabel("file size (MB)")
    ax.set_ylabel("mean KL divergence vs base (log)")
    ax.set_title(f"{Path(report.base.file).name}: size vs quality", parse_math=False)  # "$" in a name is text
    ax.grid(True, which="both", alpha=0.3)
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
