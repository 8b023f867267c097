"""`localr1 worker --host` as users write it: a name, or an IPv6 address (llama.cpp's RPC server binds IPv4 only)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.cli_helpers import localr1
from tests.workers.conftest import free_port, stop


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_host_name_is_resolved_and_the_worker_listens(signum: int, code: int) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "localr1", "worker", "--host", "localhost", "--port", str(port),
                             "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signum)  # SIGTERM (`kill`, a service manager) stops it as Ctrl-C does, exit 143
        assert proc.wait(30) == code
    finally:
        stop(proc)
    assert proc.stderr is not None
    assert f"--workers 127.0.0.1:{port}" in proc.stderr.read().decode()


def test_an_ipv6_host_is_a_one_line_error_before_starting() -> None:
    done = localr1("worker", "--host", "::1", "--port", str(free_port()))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "localr1: error: --host ::1: llama.cpp's RPC server listens on IPv4 addresses only; give one of this "
        "machine's, e.g. 127.0.0.1"]
