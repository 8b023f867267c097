"""A worker that freezes mid-answer (SIGSTOP: its connections stay open, nothing answers) under `serve --workers`:
llama.cpp's RPC client would wait for it for good. The answer fails after LOCALR1_WORKER_TIMEOUT with an error
naming the worker, the server stays up; and Ctrl-C meanwhile ends every stream with an error event and [DONE]
(no uvicorn CancelledError traceback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.cli_helpers import LOCALR1
from tests.workers.conftest import StartWorker, serving_with
from tests.workers.test_lost_worker_batch import STORY, chat_body, post

pytestmark = pytest.mark.model

Served = tuple[str, str, list[psutil.Process], subprocess.Popen[str]]


@pytest.fixture
def frozen_server(start_worker: StartWorker) -> Iterator[Served]:
    """A worker holding every layer of `localr1 serve` (worker timeout 4 s); (API base, worker, its RPC server
    processes to freeze, server). The worker is thawed at the end."""
    endpoint, worker = start_worker()
    rpc = psutil.Process(worker.pid).children(recursive=True)
    with serving_with(endpoint, parallel=None, env={"LOCALR1_WORKER_TIMEOUT": "4"}) as (base, _banner, proc):
        try:
            yield base, endpoint, rpc, proc
        finally:
            for p in rpc:
                if p.is_running():
                    p.resume()


def stream_until_frozen(base: str, rpc: list[psutil.Process], after_frozen: Any = None) -> list[str]:
    """Stream a long answer, freeze the worker after 4 deltas (then call after_frozen once); every data line."""
    request = urllib.request.Request(f"{base}/chat/completions", data=json.dumps(chat_body(STORY, 400, True)).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    lines: list[str] = []
    with urllib.request.urlopen(request, timeout=60) as stream:  # a read that waits 60 s fails the test
        for raw in stream:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            lines.append(line)
            if len(lines) == 5:
                for p in rpc:
                    p.suspend()
                if after_frozen is not None:
                    after_frozen()
    return lines


def test_a_frozen_worker_fails_the_answer_after_the_timeout_and_the_server_carries_on(
        frozen_server: Served) -> None:
    base, endpoint, rpc, proc = frozen_server
    lines = stream_until_frozen(base, rpc)
    assert lines[-1] == "data: [DONE]", lines[-3:]
    error = json.loads(lines[-2].removeprefix("data: "))["error"]
    assert endpoint in error["message"] and "stopped answering" in error["message"], error
    assert "LOCALR1_WORKER_TIMEOUT" in error["message"] and proc.poll() is None
    for p in rpc:
        p.resume()
    status, body = post(base, chat_body("Name three colors.", 12))  # the model loads again on the thawed worker
    assert status == 200 and body["choices"][0]["message"]["content"], body


def test_ctrl_c_with_a_frozen_worker_ends_each_stream_with_done_and_no_traceback(frozen_server: Served) -> None:
    base, _endpoint, rpc, proc = frozen_server
    lines = stream_until_frozen(base, rpc, after_frozen=lambda: proc.send_signal(signal.SIGINT))
    assert lines[-1] == "data: [DONE]", lines[-3:]
    assert "shutting down" in json.loads(lines[-2].removeprefix("data: "))["error"]["message"]
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and "CancelledError" not in err, err


def test_run_with_a_frozen_worker_keeps_what_arrived_and_exits_with_one_error_line(start_worker: StartWorker) -> None:
    endpoint, worker = start_worker()
    rpc = psutil.Process(worker.pid).children(recursive=True)
    run = subprocess.Popen([*LOCALR1, "run", "--workers", endpoint, "--threads", "1", "-t", "0", "-n", "400", STORY],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={**os.environ, "LOCALR1_WORKER_TIMEOUT": "4"})
    assert run.stdout is not None
    try:
        printed = b""
        while len(printed) < 20:
            chunk = os.read(run.stdout.fileno(), 64)
            assert chunk, "run ended before printing 20 bytes"
            printed += chunk
        for p in rpc:
            p.suspend()
        out, err = run.communicate(timeout=120)  # main waited here for good
    finally:
        for p in rpc:
            p.resume()
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1 and (printed + out).decode().startswith(printed.decode())
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith(f"localr1: error: worker {endpoint} stopped answering mid-answer"), err
    assert "Traceback" not in err.decode()
