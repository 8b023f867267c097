"""Ctrl-C and --debug for convert, verify, quantize and eval, run as real processes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.cli_helpers import localr1, start
from tests.quantize.ladder_fixtures import run_cli

pytestmark = pytest.mark.model  # verify, quantize and eval run llama.cpp


@pytest.fixture(scope="module")
def built(medium_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A converted GGUF and a one-type ladder of the medium checkpoint, for verify and eval."""
    out = tmp_path_factory.mktemp("built")
    assert run_cli(["convert", str(medium_ckpt), "-o", str(out / "m.gguf")]) == 0
    assert run_cli(["quantize", str(medium_ckpt), "-o", str(out / "ladder"), "--types", "Q8_0", "--no-eval",
                    "--no-imatrix"]) == 0
    return {"ckpt": medium_ckpt, "gguf": out / "m.gguf", "ladder": out / "ladder"}


def command(name: str, built: dict[str, Path], out: Path) -> tuple[list[str], Path]:
    """The command line, and the file whose mapping shows the command is at work."""
    ckpt, gguf, ladder = built["ckpt"], built["gguf"], built["ladder"]
    shard = next(ckpt.glob("*.safetensors"))
    return {
        "convert": (["convert", str(ckpt), "-o", str(out / "c.gguf")], shard),
        "verify": (["verify", str(ckpt), str(gguf)], gguf),
        "quantize": (["quantize", str(ckpt), "-o", str(out / "q"), "--types", "Q8_0,Q4_K_M"], shard),
        "eval": (["eval", str(ladder), "--speed-tokens", "64"], ladder),  # any of its GGUFs
    }[name]


def maps(pid: int, path: Path) -> bool:
    try:
        return str(path.resolve()) in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("name", ["convert", "verify", "quantize", "eval"])
def test_ctrl_c_stops_with_exit_130_in_one_line(name: str, built: dict[str, Path], tmp_path: Path) -> None:
    args, working_on = command(name, built, tmp_path)
    proc = start(*args)
    deadline = time.monotonic() + 120
    while not maps(proc.pid, working_on):  # the command has its input open: it is at work
        assert proc.poll() is None, f"{name} ended (exit {proc.returncode}) before it was seen at work"
        assert time.monotonic() < deadline, f"{name} never opened {working_on}"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGSTOP)  # hold it there while the interrupt is queued
    os.kill(proc.pid, signal.SIGINT)
    os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.decode().strip().splitlines()
    assert lines[-1] == "localr1: interrupted" and b"Traceback" not in err, err
    assert not (tmp_path / "c.gguf").exists()  # convert leaves no half-written file


@pytest.mark.parametrize(("name", "args"), [
    ("convert", ["convert", "/nonexistent/ckpt", "-o", "/nonexistent/out.gguf"]),
    ("verify", ["verify", "/nonexistent/ckpt", "/nonexistent/model.gguf"]),
    ("quantize", ["quantize", "/nonexistent/src.gguf", "-o", "/nonexistent/out"]),
    ("eval", ["eval", "/nonexistent/ladder"]),
])
def test_debug_shows_the_traceback_and_plain_errors_are_one_line(name: str, args: list[str]) -> None:
    plain = localr1(*args)
    debug = localr1("--debug", *args)
    assert plain.returncode == debug.returncode == 1
    [line] = plain.stderr.strip().splitlines()
    assert line.startswith("localr1: error: ") and "Traceback" not in plain.stderr
    assert "Traceback (most recent call last)" in debug.stderr and debug.stderr.strip().endswith(line)


@pytest.mark.parametrize("name", ["convert", "quantize"])
def test_sigterm_stops_as_ctrl_c_does_and_leaves_nothing_half_written(name: str, built: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    """`timeout` or a service manager sends SIGTERM: before, the process was killed outright and quantize left its
    lock files and a half-written quality plot in the output folder; now the same cleanup as Ctrl-C, exit 143."""
    args, working_on = command(name, built, tmp_path)
    proc = start(*args)
    deadline = time.monotonic() + 120
    while not maps(proc.pid, working_on):
        assert proc.poll() is None, f"{name} ended (exit {proc.returncode}) before it was seen at work"
        assert time.monotonic() < deadline, f"{name} never opened {working_on}"
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.decode().strip().splitlines()[-1] == "localr1: terminated" and b"Traceback" not in err, err
    assert not (tmp_path / "c.gguf").exists()
    leftovers = [p.name for p in tmp_path.rglob("*") if ".lock" in p.name or p.name.endswith(".partial")]
    assert leftovers == []
