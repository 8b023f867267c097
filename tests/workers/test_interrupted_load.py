"""Ctrl-C while a model split across a worker is starting or loading in its child process: the command stops,
leaves nothing in the temporary folder (main left a 0-byte `localr1-model-*.log`) and no child process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.cli_helpers import LOCALR1
from tests.workers.conftest import StartWorker

pytestmark = pytest.mark.model

LOAD = ["--ctx", "512", "--threads", "1", "--gpu-layers", "-1"]


def _model_children(pid: int) -> list[psutil.Process]:
    """The model's child processes of `localr1` (pid), not the worker probes (`localr1.engine.rpc`)."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        with_cmdline = None
        try:
            with_cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "localr1.engine.isolated" in with_cmdline or "localr1.engine.batch.isolated" in with_cmdline:
            found.append(child)
    return found


@pytest.mark.parametrize("wait_s", [0.0, 0.4])  # as the child starts; while it loads the model
@pytest.mark.parametrize("command", [["run", "Say hello."], ["batch", "PROMPTS", "-o", "OUT"],
                                     ["serve", "--port", "0"]])
def test_ctrl_c_while_the_child_loads_leaves_nothing_behind(command: list[str], wait_s: float,
                                                             start_worker: StartWorker, tmp_path: Path) -> None:
    endpoint, _worker = start_worker()
    (tmp_path / "prompts.jsonl").write_text('{"id": "a", "prompt": "Say hello."}\n')
    temp = tmp_path / "tmp"
    temp.mkdir()
    names = {"PROMPTS": str(tmp_path / "prompts.jsonl"), "OUT": str(tmp_path / "out.jsonl")}
    proc = subprocess.Popen([*LOCALR1, *(names.get(a, a) for a in command), *LOAD, "--workers", endpoint],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(temp)})
    try:
        deadline = time.monotonic() + 120
        while not (children := _model_children(proc.pid)):
            assert proc.poll() is None and time.monotonic() < deadline, "the model's child never started"
            time.sleep(0.005)
        time.sleep(wait_s)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 130), err  # serve stops with 0 on Ctrl-C, the others with 130
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
    assert list(temp.iterdir()) == []
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
