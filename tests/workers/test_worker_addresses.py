"""`--workers` that name one worker twice, or name something that is not a worker: one line, at once, from the real
command line against real `localr1 worker` processes and real servers on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from localr1.errors import ConfigError
from localr1.workers import PROBE_TIMEOUT_S, check_distinct, parse_workers
from tests.cli_helpers import localr1
from tests.workers.conftest import StartWorker, free_port

PLAN = ["plan", "r1-qwen-7b", "--hardware", "laptop-8gb", "--ctx", "4096"]


def one_error_line(*args: str) -> str:
    done = localr1(*args, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("localr1: error: "), done.stderr
    return lines[0]


def test_names_that_reach_one_listener_are_the_same_worker() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"workers localhost:{port} and 127\.0\.0\.1:{port} are the same worker "
                                              rf"\(both reach 127\.0\.0\.1:{port}\): list it once"):
            check_distinct(parse_workers(f"localhost:{port},127.0.0.1:{port}"))
        with socket.create_server(("127.0.0.1", 0)) as other:
            check_distinct(parse_workers(f"localhost:{port},127.0.0.1:{other.getsockname()[1]}"))
    check_distinct(parse_workers(f"localhost:{free_port()}"))  # unreachable: the probe says so, not this check


@pytest.mark.model
def test_one_worker_under_two_names_is_refused_by_plan_and_run(start_worker: StartWorker) -> None:
    endpoint, _ = start_worker()
    port = endpoint.rsplit(":", 1)[1]
    twice = f"localhost:{port},{endpoint}"
    for args in ([*PLAN, "--workers", twice], ["run", "--workers", twice, "hi"]):
        line = one_error_line(*args)
        assert f"workers localhost:{port} and {endpoint} are the same worker" in line and "list it once" in line


@pytest.fixture
def web_server() -> Iterator[str]:
    """Python's own HTTP server on 127.0.0.1: it waits for a request line, as most web servers do."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.model
def test_a_web_server_is_not_a_worker_and_is_told_at_once(web_server: str) -> None:
    for args in ([*PLAN, "--workers", web_server], ["run", "--workers", web_server, "hi"]):
        started = time.monotonic()
        line = one_error_line(*args)
        assert f"{web_server} does not answer as a llama.cpp RPC worker (is it `localr1 worker`?)" in line
        assert time.monotonic() - started < PROBE_TIMEOUT_S  # not the handshake's timeout


def test_catching_the_hello_ends_at_once_when_its_client_dies() -> None:
    """Ctrl-C kills the probing client too: the wait for its HELLO must end then, not 15 s later."""
    import psutil

    from localr1.workers import client_hello

    client_hello.cache_clear()
    result: list[bytes | None] = []
    started = time.monotonic()
    thread = threading.Thread(target=lambda: result.append(client_hello()))
    thread.start()
    me = psutil.Process()
    killed = False
    while not killed and time.monotonic() - started < 5:
        for child in me.children():
            if "probe" in child.cmdline():
                child.kill()  # before its llama.cpp could connect
                killed = True
        time.sleep(0.005)
    thread.join(PROBE_TIMEOUT_S * 2)
    elapsed = time.monotonic() - started
    client_hello.cache_clear()
    assert killed and result == [None]
    assert elapsed < PROBE_TIMEOUT_S / 3, elapsed
