"""Two real `localr1` processes on one output: the second fails at once naming the first, which finishes intact;
a run killed with SIGKILL never blocks the next one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from localr1.ggufinfo import read_info
from quantize.ladder.manifest import file_matches, load_manifest
from quantize.outlock import DIR_LOCK_NAME, INFO_SUFFIX, read_holder
from tests.cli_helpers import LOCALR1, localr1
from tests.quantize.ladder_fixtures import demo_f16_fixture, files_in  # noqa: F401

pytestmark = pytest.mark.model
TYPES = ["--types", "Q8_0,Q4_0,Q5_0", "--no-imatrix", "--no-eval", "--threads", "2"]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*LOCALR1, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}: {proc.communicate()}")
        time.sleep(0.01)


def _held_by(info: Path, pid: int) -> Callable[[], bool]:
    def check() -> bool:
        holder = read_holder(info)
        return holder is not None and holder.pid == pid
    return check


@contextmanager
def _stopped(proc: subprocess.Popen[str]) -> Iterator[None]:
    """Freeze a process (it keeps its locks) for the block."""
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(proc.pid, signal.SIGCONT)


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("localr1: error: ") and "Traceback" not in result.stderr
    return lines[0]


def _timed(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = localr1(*args, timeout=120)
    return result, time.monotonic() - started


def _assert_complete_ladder(out: Path, types: list[str]) -> None:
    manifest = load_manifest(out)
    assert manifest is not None and sorted(manifest.variants) == sorted(types)
    for record in manifest.variants.values():
        assert file_matches(out, record.file, rehash=True)  # the sha256 recorded is the file's
        assert read_info(out / record.file.path).file_type == record.type
    leftovers = [n for n in files_in(out) if ".partial" in n or ".lock" in n]
    assert leftovers == []


def test_second_quantize_and_eval_fail_at_once_and_the_first_finishes(tmp_path: Path, demo_f16: Path) -> None:
    out = tmp_path / "ladder"
    first = _start("quantize", str(demo_f16), "-o", str(out), *TYPES)
    _wait_for(lambda: (out / "manifest.json").exists() and _held_by(out / (DIR_LOCK_NAME + INFO_SUFFIX),
                                                                     first.pid)(), first, "the first run's lock")
    with _stopped(first):  # the first run cannot finish while the others try: no race decides this test
        second, seconds = _timed("quantize", str(demo_f16), "-o", str(out), *TYPES)
        line = _one_line_error(second)
        assert f"{out} is in use by another localr1 run (pid {first.pid} on {socket.gethostname()}, started " in line
        assert f"localr1 quantize {demo_f16} -o {out} --types Q8_0,Q4_0,Q5_0" in line
        assert line.endswith("wait for it to finish, or choose another output directory")
        assert seconds < 30  # no waiting for the first run (it is frozen): only the interpreter's start-up

        evaluation = _one_line_error(localr1("eval", str(out), "--speed-tokens", "0", timeout=120))
        assert f"pid {first.pid}" in evaluation and evaluation.endswith("wait for it to finish")
    out_text, err_text = first.communicate(timeout=300)
    assert first.returncode == 0, err_text
    assert "3 built, 0 already complete" in out_text
    _assert_complete_ladder(out, ["Q8_0", "Q4_0", "Q5_0"])


def test_a_sigkilled_quantize_does_not_block_the_next_run(tmp_path: Path, demo_f16: Path) -> None:
    out = tmp_path / "ladder"
    first = _start("quantize", str(demo_f16), "-o", str(out), *TYPES)
    _wait_for(lambda: any(n.endswith(f".gguf.{first.pid}.partial") for n in files_in(out)), first,
              "a partial file")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    left = files_in(out)
    assert DIR_LOCK_NAME in left and DIR_LOCK_NAME + INFO_SUFFIX in left  # the killed run's lock stays behind
    second = localr1("quantize", str(demo_f16), "-o", str(out), *TYPES, timeout=300)
    assert second.returncode == 0, second.stderr
    _assert_complete_ladder(out, ["Q8_0", "Q4_0", "Q5_0"])


class _SlowFile:
    """A FIFO in place of a file read once: its reader waits until `release()`, then gets `content`."""

    def __init__(self, path: Path, content: bytes) -> None:
        self.path, self.content = path, content
        path.unlink()
        os.mkfifo(path)
        self._go, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._go.wait()
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO while no reader has it open
            except OSError:
                time.sleep(0.01)
                continue
            os.set_blocking(fd, True)
            try:
                os.write(fd, self.content)
            finally:
                os.close(fd)
            return

    def release(self) -> None:
        self._go.set()

    def close(self) -> None:
        self._stop.set()
        self._go.set()
        self._thread.join(timeout=10)


def test_two_converts_to_one_file(tmp_path: Path, medium_ckpt: Path,
                                  copy_ckpt: Callable[[Path], Path]) -> None:
    ckpt = copy_ckpt(medium_ckpt)
    tokenizer = ckpt / "tokenizer.json"
    slow = _SlowFile(tokenizer, tokenizer.read_bytes())  # the first run holds the lock while it waits for it
    out = tmp_path / "out" / "model.gguf"
    out.parent.mkdir()
    try:
        first = _start("convert", str(ckpt), "-o", str(out), "--no-progress")
        _wait_for(_held_by(out.parent / f".{out.name}.lock{INFO_SUFFIX}", first.pid), first, "the first run's lock")
        second, seconds = _timed("convert", str(ckpt), "-o", str(out), "--no-progress", "--force")
        line = _one_line_error(second)
        assert f"{out} is in use by another localr1 run (pid {first.pid}" in line
        assert line.endswith("wait for it to finish, or choose another output file") and seconds < 30
        slow.release()
        _, err_text = first.communicate(timeout=120)
    finally:
        slow.close()
    assert first.returncode == 0, err_text
    assert read_info(out).architecture == "qwen2"
    assert sorted(files_in(out.parent)) == [out.name]


def test_a_sigkilled_convert_does_not_block_and_its_leftovers_go(tmp_path: Path, medium_ckpt: Path,
                                                                 copy_ckpt: Callable[[Path], Path]) -> None:
    ckpt = copy_ckpt(medium_ckpt)
    tokenizer = ckpt / "tokenizer.json"
    content = tokenizer.read_bytes()
    slow = _SlowFile(tokenizer, content)
    out = tmp_path / "out" / "model.gguf"
    out.parent.mkdir()
    try:
        first = _start("convert", str(ckpt), "-o", str(out), "--no-progress")
        _wait_for(_held_by(out.parent / f".{out.name}.lock{INFO_SUFFIX}", first.pid), first, "the first run's lock")
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    finally:
        slow.close()
    tokenizer.unlink()
    tokenizer.write_bytes(content)
    # what a run killed while writing leaves: its lock, its record, and its temporary shard
    (out.parent / f"{out.name}.{first.pid}.partial").write_bytes(b"GGUF half written")
    assert sorted(files_in(out.parent)) == sorted([f".{out.name}.lock", f".{out.name}.lock{INFO_SUFFIX}",
                                                 f"{out.name}.{first.pid}.partial"])
    second = localr1("convert", str(ckpt), "-o", str(out), "--no-progress")
    assert second.returncode == 0, second.stderr
    assert read_info(out).architecture == "qwen2"
    assert sorted(files_in(out.parent)) == [out.name]
