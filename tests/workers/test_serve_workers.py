"""`localr1 serve --workers` with a real `localr1 worker` on 127.0.0.1: the layers go to the worker, the output
stays the greedy output of a local run."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from localr1.engine import ChatMessage, Finished, LoadParams, SamplingParams
from localr1.engine.engine import Engine
from tests.cli_helpers import localr1
from tests.workers.conftest import StartWorker, free_port, serving_with

pytestmark = pytest.mark.model

PROMPT = "Name three colors and say why you like them."
MiB = 2**20


def tree_rss(proc: subprocess.Popen[bytes]) -> int:
    """Resident bytes of a worker and its RPC server child."""
    root = psutil.Process(proc.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=60) as reply:
        data: dict[str, Any] = json.loads(reply.read())
        return data


def ask(base: str, prompt: str) -> dict[str, Any]:
    body = json.dumps({"model": "demo", "messages": [{"role": "user", "content": prompt}], "temperature": 0,
                       "max_tokens": 40, "seed": 1}).encode()
    request = urllib.request.Request(f"{base}/chat/completions", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as reply:
        data: dict[str, Any] = json.loads(reply.read())
        return data


@pytest.fixture
def serve_with(start_worker: StartWorker) -> Iterator[tuple[str, str, subprocess.Popen[str], int]]:
    """A worker, and `localr1 serve` using it for every layer; (API base, banner, server, worker RSS growth)."""
    endpoint, worker = start_worker()
    before = tree_rss(worker)
    with serving_with(endpoint) as (base, banner, proc):
        deadline = time.monotonic() + 60
        while True:
            try:
                get(base.removesuffix("/v1") + "/health")
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        yield base, banner, proc, tree_rss(worker) - before


def test_serve_with_a_worker_gives_the_local_greedy_output(serve_with: tuple[str, str, subprocess.Popen[str], int],
                                                           demo_path: Path) -> None:
    base, banner, _, grown = serve_with
    health = get(base.removesuffix("/v1") + "/health")
    load = health["load"]
    assert load["workers"] and load["tensor_split"] and load["gpu_layers"] == sum(load["tensor_split"])
    assert load["workers"][0] in banner and "worker" in banner
    assert grown > 20 * MiB  # the worker holds weights now: the layers really went there
    reply = ask(base, PROMPT)
    local = Engine(demo_path, LoadParams(context_size=512, threads=1, seed=1),
                   SamplingParams(temperature=0.0, top_p=1.0, max_tokens=40, seed=1))
    try:
        alone = list(local.chat([ChatMessage("user", PROMPT)]))[-1]
    finally:
        local.close()
    assert isinstance(alone, Finished) and alone.answer
    assert reply["choices"][0]["message"]["content"] == alone.answer
    assert reply["usage"]["completion_tokens"] == alone.stats.generated_tokens


def test_batch_and_serve_refuse_an_unreachable_worker_in_one_line(tmp_path: Path) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"id": "a", "prompt": "hi"}\n')
    for args in (["serve", "--port", "0"], ["batch", str(prompts), "-o", str(tmp_path / "out.jsonl")]):
        done = localr1(*args, "--workers", endpoint)
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and endpoint in lines[0] and "localr1 worker" in lines[0], done.stderr
    assert not (tmp_path / "out.jsonl").exists() or (tmp_path / "out.jsonl").read_text() == ""
