"""Bad input to the ladder: a clear one-line message, exit code 1, nothing overwritten, nothing half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from quantize.errors import (
    DiskSpaceError,
    ImatrixRequiredError,
    OutputDirError,
    RequantizeError,
    SourceError,
    UnknownTypeError,
)
from quantize.ladder.builder import build_ladder
from quantize.ladder.manifest import MANIFEST_NAME
from quantize.ladder.qtypes import parse_tensor_type, parse_types
from tests.quantize.ladder_fixtures import demo_f16_fixture, files_in, ladder_options, run_cli  # noqa: F401

pytestmark = pytest.mark.model


def _one_line_error(capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("localr1: error: ")
    for fragment in fragments:
        assert fragment in err[0], err[0]
    return err[0]


def test_unknown_type_lists_the_valid_ones(tmp_path: Path, demo_f16: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    with pytest.raises(UnknownTypeError) as exc:
        parse_types("Q4_K_M,Q9_Z")
    assert "unknown quantization type 'Q9_Z'" in exc.value.message
    assert "Q4_K_M" in exc.value.message and "IQ4_XS" in exc.value.message
    out = tmp_path / "out"
    assert run_cli(["quantize", str(demo_f16), "-o", str(out), "--types", "Q4_K_M,Q9_Z"]) == 1
    _one_line_error(capsys, "unknown quantization type 'Q9_Z'", "valid:")
    assert not out.exists()


def test_unknown_tensor_type_override(tmp_path: Path, demo_f16: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UnknownTypeError):
        parse_tensor_type("Q7_K", "--output-type")
    assert parse_tensor_type("q6_k", "--output-type") == "Q6_K"
    out = tmp_path / "out"
    assert run_cli(["quantize", str(demo_f16), "-o", str(out), "--types", "Q8_0", "--output-type", "Q7_K"]) == 1
    _one_line_error(capsys, "unknown tensor type 'Q7_K' for --output-type")
    assert not out.exists()


def test_quantized_source_needs_allow_requantize(tmp_path: Path, demo_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with pytest.raises(RequantizeError) as exc:
        build_ladder(demo_path, out, ladder_options("Q4_K_M"))
    assert "already quantized (Q4_1)" in exc.value.message and "--allow-requantize" in exc.value.message
    assert not out.exists()
    assert run_cli(["quantize", str(demo_path), "-o", str(out), "--types", "Q4_K_M", "--no-eval"]) == 1
    _one_line_error(capsys, "already quantized", "--allow-requantize")
    assert not out.exists()
    assert run_cli(["quantize", str(demo_path), "-o", str(out), "--types", "Q8_0", "--no-eval", "--no-imatrix",
                    "--allow-requantize"]) == 0
    assert any(name.endswith("-Q8_0.gguf") for name in files_in(out))


@pytest.mark.parametrize("damage", ["truncated", "not-gguf", "missing", "empty-folder"])
def test_corrupt_or_missing_source(tmp_path: Path, demo_f16: Path, damage: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "source.gguf"
    if damage == "truncated":
        with demo_f16.open("rb") as fh:
            source.write_bytes(fh.read(demo_f16.stat().st_size // 2))
    elif damage == "not-gguf":
        source.write_bytes(b"PK\x03\x04 this is a zip file, not a model")
    elif damage == "empty-folder":
        source = tmp_path / "checkpoint"
        source.mkdir()
    out = tmp_path / "out"
    with pytest.raises(SourceError) as exc:
        build_ladder(source, out, ladder_options("Q8_0"))
    expected = {"truncated": "corrupt source: truncated GGUF file", "not-gguf": "neither a GGUF file nor",
                "missing": "source not found", "empty-folder": "not a checkpoint folder"}[damage]
    assert expected in exc.value.message
    assert not out.exists()
    assert run_cli(["quantize", str(source), "-o", str(out), "--types", "Q8_0"]) == 1
    _one_line_error(capsys, expected)


def test_not_enough_disk_space_writes_nothing(tmp_path: Path, demo_f16: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(DiskSpaceError) as exc:
        build_ladder(demo_f16, out, ladder_options("Q8_0,Q4_K_M"), free_space=lambda _path: 50_000_000)
    message = exc.value.message
    assert "not enough disk space" in message and "0.05 GB are free" in message
    needed = float(message.split("needs about ")[1].split(" GB")[0])
    assert 0.24 < needed < 0.27  # Q8_0 (145 MB) + Q4_K_M (105 MB), estimated by llama.cpp's dry run
    assert [name for name in files_in(out) if name.endswith(".gguf") or ".partial" in name] == []


def test_directory_with_someone_elses_files_is_refused(tmp_path: Path, demo_f16: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    with pytest.raises(OutputDirError) as exc:
        build_ladder(demo_f16, out, ladder_options("Q8_0"))
    assert "already holds files localr1 did not write (notes.txt)" in exc.value.message
    assert files_in(out) == {"notes.txt": 8}
    assert run_cli(["quantize", str(demo_f16), "-o", str(out), "--types", "Q8_0"]) == 1
    _one_line_error(capsys, "did not write")
    assert (out / "notes.txt").read_text() == "my notes"


def test_foreign_manifest_and_file_at_a_target_name_are_refused(tmp_path: Path, demo_f16: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / MANIFEST_NAME).write_text(json.dumps({"name": "some other tool"}))
    with pytest.raises(OutputDirError, match="not written by localr1 quantize"):
        build_ladder(demo_f16, foreign, ladder_options("Q8_0"))
    assert files_in(foreign) == {MANIFEST_NAME: len(json.dumps({"name": "some other tool"}))}

    out = tmp_path / "ours"
    build_ladder(demo_f16, out, ladder_options("Q8_0", use_imatrix=False))
    squatter = next(out.glob("*-Q8_0.gguf")).with_name(next(out.glob("*-Q8_0.gguf")).name.replace("Q8_0", "Q2_K"))
    squatter.write_bytes(b"someone else's bytes")
    with pytest.raises(OutputDirError, match=r"not in .* manifest"):
        build_ladder(demo_f16, out, ladder_options("Q8_0,Q2_K", use_imatrix=False))
    assert squatter.read_bytes() == b"someone else's bytes"


def test_ladder_of_another_source_is_refused(tmp_path: Path, demo_f16: Path) -> None:
    out = tmp_path / "out"
    build_ladder(demo_f16, out, ladder_options("Q8_0", use_imatrix=False))
    other = tmp_path / "other.gguf"
    shutil.copyfile(demo_f16, other)
    with other.open("r+b") as fh:  # same size, one weight byte different
        fh.seek(-2, 2)
        byte = fh.read(1)
        fh.seek(-2, 2)
        fh.write(bytes([byte[0] ^ 0x01]))
    before = files_in(out)
    with pytest.raises(OutputDirError, match="holds the ladder of another source"):
        build_ladder(other, out, ladder_options("Q8_0", use_imatrix=False))
    assert files_in(out) == before


def test_types_that_need_an_importance_matrix_refuse_without_one(tmp_path: Path, demo_f16: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with pytest.raises(ImatrixRequiredError) as exc:
        build_ladder(demo_f16, out, ladder_options("Q4_K_M,IQ2_XS,IQ1_S", use_imatrix=False))
    assert exc.value.message.startswith("IQ2_XS, IQ1_S need an importance matrix")
    assert not out.exists()
    assert run_cli(["quantize", str(demo_f16), "-o", str(out), "--types", "IQ3_XXS", "--no-imatrix"]) == 1
    _one_line_error(capsys, "IQ3_XXS need an importance matrix", "--no-imatrix")
    assert not out.exists()


def test_output_path_that_is_a_file(tmp_path: Path, demo_f16: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(OutputDirError, match="is a file, not a directory"):
        build_ladder(demo_f16, target, ladder_options("Q8_0"))
    assert target.read_text() == "x"


def test_type_table_matches_llama_cpp() -> None:
    import llama_cpp

    from quantize.ladder.qtypes import QUANT_TYPES, TENSOR_TYPES

    for name, qtype in QUANT_TYPES.items():
        constant = "LLAMA_FTYPE_ALL_F32" if name == "F32" else f"LLAMA_FTYPE_MOSTLY_{name}"
        assert getattr(llama_cpp, constant) == qtype.ftype, name
    for name, value in TENSOR_TYPES.items():
        assert getattr(llama_cpp, f"GGML_TYPE_{name}", 30) == value, name  # the bindings lack GGML_TYPE_BF16 (30)
    needing = {n for n, t in QUANT_TYPES.items() if t.needs_imatrix}
    assert needing == {"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "Q2_K_S"}
    assert [t.name for t in parse_types("q8_0, Q4_K_M,q8_0")] == ["Q8_0", "Q4_K_M"]
