"""SIGTERM during `localr1 batch` (a service manager, `timeout`, a parent script) stops it as Ctrl-C does: every
finished answer kept whole, the lock beside the results removed, a line that says how to resume, exit 143. On main
the process was killed outright: no line, exit -15, the lock files left beside the results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli_helpers import LOCALR1, localr1, terminate_while_loading

pytestmark = pytest.mark.model


def _prompts(tmp_path: Path, count: int) -> tuple[Path, Path]:
    source, out = tmp_path / "prompts.jsonl", tmp_path / "results.jsonl"
    source.write_text("".join(json.dumps({"prompt": f"Count from 1 to {i + 3}."}) + "\n" for i in range(count)))
    return source, out


def test_sigterm_mid_batch_keeps_the_answers_and_says_how_to_resume(tmp_path: Path) -> None:
    source, out = _prompts(tmp_path, 12)
    args = ["batch", str(source), "-o", str(out), "-n", "24", "-t", "0", "--parallel", "2"]
    proc = subprocess.Popen([*LOCALR1, *args], stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 1):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "localr1: terminated:" in err and "run the same command again to resume" in err, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts.jsonl", "results.jsonl"]  # no lock left
    done = [json.loads(line) for line in out.read_text().splitlines()]  # every line is whole JSON
    assert 1 <= len(done) < 12
    rerun = localr1(*args, timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    assert len(out.read_text().splitlines()) == 12


def test_sigterm_while_the_model_loads_is_one_line_and_exit_143(tmp_path: Path, demo_path: Path) -> None:
    source, out = _prompts(tmp_path, 2)
    proc = subprocess.Popen([*LOCALR1, "batch", str(source), "-o", str(out), "-n", "8"], stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    err = terminate_while_loading(proc, demo_path)
    assert err.strip().splitlines()[-1].startswith("localr1: terminated"), err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no lock left
