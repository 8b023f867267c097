"""`localr1 serve` as a user starts it: refusals before any model loads, and a real process serving on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.cli_helpers import LOCALR1, localr1, terminate_while_loading


def test_another_address_without_a_key_is_refused() -> None:
    result = localr1("serve", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "give --api-key or --api-key-file" in result.stderr


def test_an_empty_key_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "key.txt"
    empty.write_text("\n")
    result = localr1("serve", "--host", "0.0.0.0", "--api-key-file", str(empty))
    assert result.returncode == 1 and "is empty; put the key on its first line" in result.stderr


def test_a_busy_port_is_a_one_line_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        result = localr1("serve", "--port", str(busy.getsockname()[1]))
    assert result.returncode == 1 and "choose another --port" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.model
def test_serve_answers_on_loopback_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k-123\n")
    proc = subprocess.Popen([*LOCALR1, "serve", "--port", "0", "--ctx", "512", "-n", "4", "--api-key-file", str(key)],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
    assert match, line
    request = urllib.request.Request(f"http://127.0.0.1:{match.group(1)}/v1/models",
                                     headers={"Authorization": "Bearer k-123"})
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                assert json.loads(reply.read())["data"][0]["id"] == "demo"
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert "Traceback" not in proc.stderr.read()


@pytest.mark.model
def test_sigterm_stops_serving_with_one_line_and_exit_143() -> None:
    """A service manager stops `serve` with SIGTERM: uvicorn re-raised it once the server had stopped, so the
    process died of it (exit -15) before the model was freed, saying nothing."""
    proc = subprocess.Popen([*LOCALR1, "serve", "--port", "0", "--ctx", "512", "-n", "4"],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "localr1: serving" in line, line
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["localr1: terminated"], err


@pytest.mark.model
def test_sigterm_while_the_model_loads_is_one_line_and_exit_143(demo_path: Path) -> None:
    proc = subprocess.Popen([*LOCALR1, "serve", "--port", "0", "--ctx", "512"], stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    err = terminate_while_loading(proc, demo_path, timeout=60)
    assert err.strip().splitlines()[-1] == "localr1: terminated" and "Traceback" not in err, err
