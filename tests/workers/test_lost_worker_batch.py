"""A worker killed mid-answer under `serve --workers` and `batch --workers` (real `localr1 worker` processes on
127.0.0.1): the answers in flight end with an error naming it; the server stays up, the batch keeps what it
finished, and both carry on once the worker is back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.cli_helpers import LOCALR1
from tests.workers.conftest import SERVE_LOAD, StartWorker, serving_with

pytestmark = pytest.mark.model

STORY = "Write a long story about a lighthouse keeper and a storm."


def post(base: str, body: dict[str, Any], timeout: float = 300) -> tuple[int, dict[str, Any]]:
    """POST a chat request; (status, JSON body) whatever the status."""
    request = urllib.request.Request(f"{base}/chat/completions", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def chat_body(prompt: str, max_tokens: int, stream: bool = False) -> dict[str, Any]:
    return {"model": "demo", "messages": [{"role": "user", "content": prompt}], "temperature": 0,
            "max_tokens": max_tokens, "seed": 1, "stream": stream}


def active(base: str) -> int:
    """Sequences the server is decoding now."""
    with urllib.request.urlopen(base.removesuffix("/v1") + "/health", timeout=60) as reply:
        return int(json.loads(reply.read())["active"])


@pytest.fixture
def server(start_worker: StartWorker) -> Iterator[tuple[str, str, subprocess.Popen[bytes], subprocess.Popen[str]]]:
    """A worker holding every layer of `localr1 serve --parallel 2`; (API base, worker, worker's process, server)."""
    endpoint, worker = start_worker()
    with serving_with(endpoint) as (base, banner, proc):
        assert "if one stops, the server stops too" not in banner and endpoint in banner
        yield base, endpoint, worker, proc


def test_serve_survives_a_killed_worker_and_loads_again_when_it_is_back(
        server: tuple[str, str, subprocess.Popen[bytes], subprocess.Popen[str]], start_worker: StartWorker) -> None:
    base, endpoint, worker, proc = server
    whole: list[tuple[int, dict[str, Any]]] = []
    asker = threading.Thread(target=lambda: whole.append(post(base, chat_body(STORY, 400))))
    asker.start()
    # a stream beside it, in the same batch: the worker dies once its first deltas have arrived
    request = urllib.request.Request(f"{base}/chat/completions", data=json.dumps(chat_body(STORY, 400, True)).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    events: list[dict[str, Any]] = []
    done = False
    with urllib.request.urlopen(request, timeout=300) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                break
            events.append(json.loads(line.removeprefix("data: ")))
            texts = [e for e in events if e.get("choices") and e["choices"][0]["delta"].get("content")]
            if len(texts) >= 4 and worker.poll() is None and active(base) == 2:  # both requests are running
                worker.send_signal(signal.SIGKILL)
                worker.wait()
    asker.join(300)
    assert done, "the stream did not end with [DONE]"
    deltas = [e for e in events if "choices" in e]
    assert len([e for e in deltas if e["choices"][0]["delta"].get("content")]) >= 4  # what was sent stays sent
    assert all(e["choices"][0]["finish_reason"] is None for e in deltas)  # no normal ending
    error = events[-1]["error"]
    assert endpoint in error["message"] and "went away mid-answer" in error["message"] and "localr1 worker" in \
        error["message"] and error["type"] == "server_error"
    status, body = whole[0]
    assert status == 500 and endpoint in body["error"]["message"] and "went away" in body["error"]["message"]
    assert proc.poll() is None  # the server is still up
    status, body = post(base, chat_body("Name three colors.", 20))
    assert status == 503 and endpoint in body["error"]["message"] and "cannot be reached" in body["error"]["message"]
    assert body["error"]["code"] == "worker_unavailable" and proc.poll() is None
    with pytest.raises(urllib.error.HTTPError) as stopped:  # a monitor sees the server cannot answer
        urllib.request.urlopen(base.removesuffix("/v1") + "/health", timeout=60)
    assert stopped.value.code == 503 and json.loads(stopped.value.read())["status"] == "stopped"
    start_worker(port=int(endpoint.rsplit(":", 1)[1]))  # the worker is back: a fresh model process uses it
    status, body = post(base, chat_body("Name three colors.", 20))
    assert status == 200 and body["choices"][0]["message"]["content"], body
    with urllib.request.urlopen(base.removesuffix("/v1") + "/health", timeout=60) as reply:
        health = json.loads(reply.read())
    assert health["load"]["workers"] == [endpoint] and health["steps"] > 0


def test_batch_keeps_the_answers_finished_before_a_lost_worker_and_resumes(start_worker: StartWorker,
                                                                          tmp_path: Path) -> None:
    endpoint, worker = start_worker()
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"{STORY} Chapter {i}."}) + "\n"
                               for i in range(8)))
    output = tmp_path / "out.jsonl"
    command = [*LOCALR1, "batch", str(prompts), "-o", str(output), *SERVE_LOAD, "--parallel", "2", "-t", "0",
               "-n", "24", "--workers", endpoint]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        if output.exists() and output.read_text().count("\n") >= 2:
            worker.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"localr1: error: worker {endpoint} went away mid-answer"), err
    assert str(output) in last and "run the same command again to resume" in last and "Traceback" not in err
    assert err.count("error") == 1 and "not written" not in err, err  # one line says it all
    kept = output.read_text()
    assert kept.endswith("\n")  # no half line
    first = [json.loads(line) for line in kept.splitlines()]
    assert 2 <= len(first) < 8 and all(r["answer"] or r["thinking"] for r in first)
    start_worker(port=int(endpoint.rsplit(":", 1)[1]))
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, env=dict(os.environ), check=False)
    assert again.returncode == 0, again.stderr
    assert output.read_text().startswith(kept)  # what was kept stays as it was
    ids = [json.loads(line)["id"] for line in output.read_text().splitlines()]
    assert sorted(ids) == [f"p{i}" for i in range(8)]


def test_a_worker_lost_while_the_server_is_idle_is_a_503_not_a_failed_answer(
        server: tuple[str, str, subprocess.Popen[bytes], subprocess.Popen[str]], start_worker: StartWorker) -> None:
    """Nothing was in flight when the worker died: the next request is told it cannot be reached (503, as for a
    worker still missing after a loss), not 500 'went away mid-answer', and the server loads again once it is back."""
    base, endpoint, worker, proc = server
    status, body = post(base, chat_body("Name three colors.", 8))
    assert status == 200, body
    rpc_server = psutil.Process(worker.pid).children(recursive=True)  # it follows the worker when that dies
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    psutil.wait_procs(rpc_server, timeout=30)
    status, body = post(base, chat_body("Name three colors.", 20))
    assert status == 503, body
    assert endpoint in body["error"]["message"] and "cannot be reached" in body["error"]["message"]
    assert body["error"]["code"] == "worker_unavailable" and proc.poll() is None
    start_worker(port=int(endpoint.rsplit(":", 1)[1]))
    status, body = post(base, chat_body("Name three colors.", 20))
    assert status == 200 and body["choices"][0]["message"]["content"], body
