"""`--workers` that name one worker twice, or name something that is not a worker: one line, at once, from the real
command line against real `localr1 worker` processes and real servers on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest

from localr1.errors import ConfigError
from localr1.workers import check_distinct, parse_workers
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
