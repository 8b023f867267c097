"""Reruns and interruptions: complete variants are skipped, partial files are never taken as done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import quantize.ladder.builder as ladder_module
import quantize.ladder.quantizer as quantizer_module
from quantize.ladder.builder import build_ladder
from quantize.ladder.manifest import load_manifest
from tests.quantize.ladder_fixtures import demo_f16_fixture, files_in, ladder_options  # noqa: F401

pytestmark = pytest.mark.model
TYPES = "Q8_0,Q4_0"


def _final(out: Path, qtype: str) -> Path:
    return next(out.glob(f"*-{qtype}.gguf"))


def test_interrupted_run_leaves_no_partial_and_resumes(tmp_path: Path, demo_f16: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    real = quantizer_module.quantize_file

    def interrupted(source: Path, dest: Path, qtype: Any, *args: Any, **kwargs: Any) -> None:
        if qtype.name == "Q4_0":
            dest.write_bytes(b"GGUF half written")
            raise KeyboardInterrupt
        real(source, dest, qtype, *args, **kwargs)

    monkeypatch.setattr(ladder_module, "quantize_file", interrupted)  # the name build_ladder calls
    with pytest.raises(KeyboardInterrupt):
        build_ladder(demo_f16, out, ladder_options(TYPES, use_imatrix=False))
    names = files_in(out)
    assert not [n for n in names if ".partial" in n]
    assert [n for n in names if n.endswith(".gguf")] == [_final(out, "Q8_0").name]
    manifest = load_manifest(out)
    assert manifest is not None and list(manifest.variants) == ["Q8_0"]

    monkeypatch.setattr(ladder_module, "quantize_file", real)
    result = build_ladder(demo_f16, out, ladder_options(TYPES, use_imatrix=False))
    assert [(o.type, o.status) for o in result.outcomes] == [("Q8_0", "skipped"), ("Q4_0", "built")]


def test_leftover_partial_files_are_removed_and_damaged_outputs_rebuilt(tmp_path: Path, demo_f16: Path) -> None:
    out = tmp_path / "out"
    build_ladder(demo_f16, out, ladder_options(TYPES, use_imatrix=False))
    q8, q4 = _final(out, "Q8_0"), _final(out, "Q4_0")
    leftover = out / f".{q4.name}.partial"
    leftover.write_bytes(b"GGUF from a killed run")
    with q8.open("r+b") as fh:  # cut short, as if a copy was interrupted
        fh.truncate(q8.stat().st_size // 2)
    result = build_ladder(demo_f16, out, ladder_options(TYPES, use_imatrix=False))
    assert [(o.type, o.status) for o in result.outcomes] == [("Q8_0", "rebuilt"), ("Q4_0", "skipped")]
    assert not leftover.exists()
    manifest = load_manifest(out)
    assert manifest is not None and manifest.variants["Q8_0"].file.size == q8.stat().st_size


def test_changed_content_is_caught_by_its_hash(tmp_path: Path, demo_f16: Path) -> None:
    out = tmp_path / "out"
    build_ladder(demo_f16, out, ladder_options("Q4_0", use_imatrix=False))
    q4 = _final(out, "Q4_0")
    with q4.open("r+b") as fh:  # same size, one byte of weights flipped, newer mtime
        fh.seek(-3, 2)
        byte = fh.read(1)
        fh.seek(-3, 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.utime(q4, ns=(time.time_ns(), time.time_ns()))
    result = build_ladder(demo_f16, out, ladder_options("Q4_0", use_imatrix=False))
    assert result.outcomes[0].status == "rebuilt"


def test_changed_parameters_rebuild_the_variant(tmp_path: Path, demo_f16: Path) -> None:
    out = tmp_path / "out"
    build_ladder(demo_f16, out, ladder_options("Q4_0", use_imatrix=False))
    size = _final(out, "Q4_0").stat().st_size
    from quantize.ladder.quantizer import QuantizeOptions

    options = ladder_options("Q4_0", use_imatrix=False,
                             quantize=QuantizeOptions(threads=2, token_embedding_type="Q4_0"))
    result = build_ladder(demo_f16, out, options)
    assert result.outcomes[0].status == "rebuilt"
    assert _final(out, "Q4_0").stat().st_size < size  # the (tied) token embedding was Q8_0, now Q4_0


def test_ctrl_c_during_llama_quantize_removes_the_partial(tmp_path: Path, demo_f16: Path) -> None:
    out = tmp_path / "out"
    script = (
        "import sys\n"
        "from quantize.ladder.builder import build_ladder\n"
        "from tests.quantize.ladder_fixtures import ladder_options\n"
        "build_ladder(sys.argv[1], sys.argv[2], ladder_options('IQ4_XS', use_imatrix=False))\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", script, str(demo_f16), str(out)], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(n.endswith(f".gguf.{proc.pid}.partial") for n in files_in(out)):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    names = files_in(out)
    assert not [n for n in names if ".partial" in n], names
    assert not [n for n in names if n.endswith(".gguf")], names
    manifest = load_manifest(out)
    assert manifest is not None and manifest.variants == {}


def test_a_different_importance_matrix_rebuilds_the_variants_that_use_it(tmp_path: Path, demo_f16: Path) -> None:
    from quantize.ladder.imatrix_file import load_imatrix, save_imatrix

    out = tmp_path / "out"
    first = build_ladder(demo_f16, out, ladder_options("Q4_K_M,Q8_0", calibration_tokens=64))
    assert {o.status for o in first.outcomes} == {"built"}
    matrix = load_imatrix(out / "imatrix.gguf")
    for entry in matrix.entries.values():
        entry.sums[:] = entry.sums * 0 + 1.0  # a flat matrix: a different one
    other = tmp_path / "other-imatrix.gguf"
    save_imatrix(matrix, other)
    again = build_ladder(demo_f16, out, ladder_options("Q4_K_M,Q8_0", imatrix_file=other))
    status = {o.type: o.status for o in again.outcomes}
    assert status == {"Q4_K_M": "rebuilt", "Q8_0": "skipped"}  # only Q4_K_M uses the matrix
    assert json.loads((out / "manifest.json").read_text())["imatrix"]["sha256"] == matrix.sha256()
