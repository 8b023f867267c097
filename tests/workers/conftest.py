"""Workers for the tests: real `localr1 worker` processes on 127.0.0.1, stopped by their pid."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from localr1.workers import parse_endpoint, probe_worker
from tests.cli_helpers import LOCALR1

StartWorker = Callable[..., tuple[str, subprocess.Popen[bytes]]]
SERVE_LOAD = ["--ctx", "512", "--threads", "1", "--gpu-layers", "-1", "--kv-type", "f16", "--no-flash-attn"]


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_worker(*extra: str, port: int | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """`localr1 worker` with one thread on a loopback port (a free one by default), returned once it answers."""
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "localr1", "worker", "--port", str(port), "--threads", "1",
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    endpoint = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            with socket.socket() as s:
                listening = s.connect_ex(("127.0.0.1", port)) == 0
            if listening:  # (probed once that connection is closed: a worker serves one client at a time)
                probe_worker(parse_endpoint(endpoint))
                return endpoint, proc
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited with code {proc.returncode}")
            time.sleep(0.2)
        raise RuntimeError("the worker did not start listening in 60 s")
    except BaseException:
        stop(proc)
        raise


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a worker (its RPC server child follows it) and wait for it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def two_workers() -> Iterator[tuple[str, str]]:
    """Two workers for the whole module."""
    first, p1 = launch_worker()
    try:
        second, p2 = launch_worker()
    except BaseException:
        stop(p1)
        raise
    yield first, second
    stop(p1)
    stop(p2)


@pytest.fixture
def start_worker() -> Iterator[StartWorker]:
    """Start workers that this test may kill; whatever is left is stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*extra: str, port: int | None = None) -> tuple[str, subprocess.Popen[bytes]]:
        endpoint, proc = launch_worker(*extra, port=port)
        started.append(proc)
        return endpoint, proc

    yield start
    for proc in started:
        stop(proc)


@contextlib.contextmanager
def serving_with(endpoint: str, *, parallel: int | None = 2,
                 env: dict[str, str] | None = None) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """`localr1 serve` (`--parallel N` unless None) with every layer on the worker at `endpoint`, and `env` added
    to its environment; (API base, banner, server), stopped with Ctrl-C at the end."""
    slots = ["--parallel", str(parallel)] if parallel is not None else []
    proc = subprocess.Popen([*LOCALR1, "serve", "--port", "0", *SERVE_LOAD, *slots, "--workers", endpoint],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    assert proc.stderr is not None
    try:
        banner = ""
        while "serving" not in banner:
            banner = proc.stderr.readline()
            assert banner, "the server exited before serving"
        match = re.search(r"http://127\.0\.0\.1:(\d+)/v1", banner)
        assert match, banner
        yield f"http://127.0.0.1:{match.group(1)}/v1", banner, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
