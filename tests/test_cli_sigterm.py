"""SIGTERM during `localr1 run`'s answer (`timeout 60 localr1 run ...`, a service manager, a parent script) stops it
as Ctrl-C's stop does: what arrived is kept (printed, or in the --json object), and the exit code is 143. On main
the process was killed outright: `run --json` printed nothing at all."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.cli_helpers import cpu_to_first_output, read_until, start, terminate_while_loading, wait_for_cpu

pytestmark = pytest.mark.model

STORY = "Write a very long story about a lighthouse keeper, at least 3000 words."
ARGS = ("-t", "0", "-n", "3000", "--ctx", "4096", "--loop-guard", "off", "--threads", "1")


def test_sigterm_keeps_what_arrived_and_exits_143() -> None:
    proc = start("run", "--stats", *ARGS, STORY)
    first = read_until(proc, lambda out: len(out.strip()) > 20, timeout=240)  # the answer is streaming
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert b"Traceback" not in err and b"cancelled" in err, err
    partial = (first + rest).decode()
    assert partial.endswith("\n") and partial.strip()


def test_sigterm_with_json_still_prints_the_object(demo_path: Path) -> None:
    args = ("run", *ARGS, STORY)
    first_token = cpu_to_first_output(demo_path, *args)
    proc = start("run", "--json", *ARGS, STORY)
    wait_for_cpu(proc, demo_path, 2 * first_token + 1.0, timeout=240)  # loaded and well into the answer
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    data = json.loads(out)
    assert data["stop_reason"] == "cancelled" and data["answer"].strip()


def test_sigterm_while_the_model_loads_is_one_line_and_exit_143(demo_path: Path) -> None:
    """Before the answer starts (the load), SIGTERM killed the process outright: exit -15 and no line."""
    err = terminate_while_loading(start("run", *ARGS, STORY), demo_path)
    assert err.strip().splitlines()[-1] == "localr1: terminated", err
    assert "Traceback" not in err and "Exception ignored" not in err, err
