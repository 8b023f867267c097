"""Run the real `localr1` command line in a subprocess, with deadlines that stop a hang."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOCALR1 = [sys.executable, "-m", "localr1"]


def localr1(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `localr1 ARGS` with this test's environment; returns the completed process."""
    return subprocess.run(
        [*LOCALR1, *args], input=stdin, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ), check=False,
    )


def start(*args: str) -> subprocess.Popen[bytes]:
    """Start `localr1 ARGS` with pipes for stdout and stderr (bytes: read them with `read_until`)."""
    return subprocess.Popen([*LOCALR1, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=dict(os.environ))


def read_until(proc: subprocess.Popen[bytes], done: Callable[[bytes], bool], timeout: float) -> bytes:
    """Read stdout until done(what was read) holds; kills the process and fails at the deadline or at EOF.

    Each read waits on select() with the time left, so a process that hangs cannot hang the test.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    got = b""
    deadline = time.monotonic() + timeout
    while not done(got):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        if not ready:
            proc.kill()
            raise AssertionError(f"no expected output within {timeout:.0f} s; got {got!r}")
        chunk = os.read(fd, 65536)
        if not chunk:
            proc.wait(10)
            raise AssertionError(f"stdout closed (exit {proc.returncode}) before the expected output; got {got!r}")
        got += chunk
    return got


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _mapped(proc: subprocess.Popen[Any], model: Path, deadline: float, poll: float = 0.02) -> float:
    """Wait until the process has mapped `model`; returns its CPU seconds at that moment."""
    maps, name = Path(f"/proc/{proc.pid}/maps"), str(model.resolve())
    while name not in maps.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the process never mapped {model} (exit {proc.returncode})")
        time.sleep(poll)
    return cpu_seconds(proc.pid)


def terminate_while_loading(proc: subprocess.Popen[Any], model: Path, timeout: float = 120) -> str:
    """Send SIGTERM as soon as the process maps `model` (its load has begun); its stderr once it has exited with
    143, the exit code of a command stopped by SIGTERM."""
    _mapped(proc, model, time.monotonic() + timeout, poll=0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=timeout)
    text = err.decode() if isinstance(err, bytes) else err
    assert proc.returncode == 143, text
    return text


def wait_for_cpu(proc: subprocess.Popen[bytes], model: Path, cpu_after_map: float, timeout: float) -> None:
    """Wait until the process has mapped `model` and then spent `cpu_after_map` seconds of CPU.

    CPU time, not wall time: a busy machine makes this slower, never too early.
    """
    deadline = time.monotonic() + timeout
    base = _mapped(proc, model, deadline)
    while cpu_seconds(proc.pid) - base < cpu_after_map:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the process ended or stalled (exit {proc.returncode}) before "
                                 f"{cpu_after_map:.1f} s of CPU")
        time.sleep(0.02)


def cpu_to_first_output(model: Path, *args: str, timeout: float = 240) -> float:
    """CPU seconds `localr1 ARGS` spends from mapping `model` to its first byte on stdout (loading, the
    prompt, the first token): what a run that streams nothing (--json) needs before it is surely generating."""
    proc = start(*args)
    try:
        deadline = time.monotonic() + timeout
        base = _mapped(proc, model, deadline)
        assert proc.stdout is not None
        while not select.select([proc.stdout.fileno()], [], [], 0.02)[0]:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no output from localr1 {' '.join(args)} within {timeout:.0f} s")
        return cpu_seconds(proc.pid) - base
    finally:
        proc.kill()
        proc.wait(10)
