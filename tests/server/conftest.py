"""A real `localr1 serve` app on 127.0.0.1 (a free port), run by uvicorn in a thread, over the batched demo model."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from localr1.engine import LoadParams, SamplingParams
from localr1.engine.batch import BatchEngine
from localr1.engine.batch.scheduler import Scheduler
from localr1.server.app import ServerConfig, create_app

SAMPLING = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=16, seed=1)
KEY = "s3cret-key"


@dataclass
class LiveServer:
    """A running server: its base URL and the scheduler behind it."""

    url: str
    scheduler: Scheduler

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/health", timeout=30) as reply:
            data: dict[str, Any] = json.loads(reply.read())
            return data


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """POST raw bytes; (status, JSON body) whatever the status."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _serve(path: Path, api_key: str | None, parallel: int) -> Iterator[LiveServer]:
    engine = BatchEngine(path, LoadParams(context_size=512, seed=1), SAMPLING, parallel=parallel)
    scheduler = Scheduler(engine)
    app = create_app(scheduler, ServerConfig("demo", api_key, max_body_bytes=64_000))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{sock.getsockname()[1]}/v1", scheduler)
    server.should_exit = True
    thread.join(timeout=30)
    scheduler.close()
    engine.close()
    sock.close()


@pytest.fixture(scope="module")
def live(r1_demo_path: Path) -> Iterator[LiveServer]:
    """The demo weights with the R1 template (so replies think first), two slots, no key."""
    yield from _serve(r1_demo_path, None, 2)


@pytest.fixture(scope="module")
def keyed(demo_path: Path) -> Iterator[LiveServer]:
    """The demo model behind an API key, one slot."""
    yield from _serve(demo_path, KEY, 1)
