"""Text that comes from files (model, type and file names, a damaged manifest or cache) is shown as it is and
never breaks a command: no rich markup, no matplotlib mathtext, no raw exception."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from quantize.errors import OutputDirError
from quantize.ladder.manifest import FORMAT, MANIFEST_NAME, VERSION, load_manifest
from quantize.progress import RichReporter
from quantize.quality.evaluate import ModelQuality, QualityReport, _load_reference
from quantize.quality.report import png_chart, quality_table
from tests.cli_helpers import localr1
from tests.quantize.ladder_fixtures import demo_f16_fixture, files_in  # noqa: F401

NAMES = ["Q4 [experimental]", "[bold]Q8_0[/bold]", "[/x] Q5", "Q2 $_$", "Q3 $^$"]


def _quality(name: str, size: int, file: str = "x.gguf") -> ModelQuality:
    return ModelQuality(name=name, file=file, size=size, bpw=4.5, ppl=10.0, kld_mean=0.01 * size, kld_median=0.01,
                        kld_p99=0.1, kld_max=0.2, top1=0.9, decode_tps=None, imatrix=True)


def _report() -> QualityReport:
    variants = [_quality(name, 10 * (i + 1)) for i, name in enumerate(NAMES)]
    return QualityReport(base=_quality("F16 [base]", 100, "/models/r1 $^$ [/edition].gguf"), variants=variants,
                         heldout={"positions": 10}, settings={})


def test_quality_table_shows_names_as_they_are() -> None:
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(quality_table(_report()))
    shown = console.export_text()
    for name in [*NAMES, "F16 [base]"]:
        assert name in shown


def test_quality_chart_with_dollars_in_names(tmp_path: Path) -> None:
    path = png_chart(_report(), tmp_path / "quality.png")
    assert path is not None and path.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["quality.png"]


def test_progress_lines_show_file_names_as_they_are() -> None:
    out = io.StringIO()
    with RichReporter(Console(file=out, force_terminal=True, width=200)) as reporter:
        reporter.start("hashing d[/x].gguf", 10)
        reporter.advance(5)
        reporter.note("converted d[experimental].gguf to base-F16.gguf")
        reporter.finish("[/bold] done")
    text = out.getvalue()
    assert "converted d[experimental].gguf" in text and "[/bold] done" in text


@pytest.mark.parametrize("damage", [{"variants": []}, {"base": "x"}, {"source": ["a"]}, {"imatrix": 3},
                                    {"parameters": None}, {"variants": {"Q8_0": {"file": 1}}}])
def test_a_damaged_manifest_is_a_clear_error(tmp_path: Path, damage: dict[str, object]) -> None:
    out = tmp_path / "ladder"
    out.mkdir()
    document = {"format": FORMAT, "version": VERSION, "source": {}, "base": {}, "llama_cpp": {}, "parameters": {},
                "imatrix": None, "variants": {}, **damage}
    (out / MANIFEST_NAME).write_text(json.dumps(document))
    with pytest.raises(OutputDirError, match="is a damaged localr1 manifest"):
        load_manifest(out)
    result = localr1("eval", str(out))
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"localr1: error: {out / MANIFEST_NAME} is a damaged localr1 manifest; choose another output directory"]
    assert files_in(out) == {MANIFEST_NAME: len(json.dumps(document))}


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 cut short", b"\x93NUMPY garbage", b"not numpy at all"])
def test_a_damaged_reference_cache_is_recomputed(tmp_path: Path, content: bytes) -> None:
    cache = tmp_path / "eval-reference.npz"
    cache.write_bytes(content)
    assert _load_reference(cache, {"n_ctx": 512}) is None
    np.savez(cache, meta=np.array(json.dumps({"n_ctx": 256})))
    assert _load_reference(cache, {"n_ctx": 512}) is None  # another measurement's cache


@pytest.mark.model
def test_quantize_and_eval_into_a_folder_with_brackets(tmp_path: Path, demo_f16: Path) -> None:
    out = tmp_path / "o[" / "x]"  # shown through rich, "[/x]" is a closing tag that matches nothing
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    result = localr1("quantize", str(demo_f16), "-o", str(out), "--types", "Q4_0", "--no-imatrix", "--threads", "2",
                     "--heldout", str(heldout), "--speed-tokens", "0", timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"1 built, 0 already complete; manifest: {out / MANIFEST_NAME}" in result.stdout
    assert f"report: {out / 'quality.json'}" in result.stdout
    assert "Q4_0" in result.stdout and "Traceback" not in result.stderr
