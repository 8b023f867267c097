"""A model split across real `localr1 worker` processes on 127.0.0.1 (llama.cpp's RPC backend)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localr1.engine import AnswerDelta, ChatMessage, Finished, LoadParams, SamplingParams, ThinkingDelta
from localr1.engine.engine import Engine
from localr1.engine.params import LoadRequest
from localr1.engine.port import ChatEngine
from localr1.errors import WorkerError
from localr1.loader import open_engine
from localr1.store import ConversationStore
from localr1.tui.session import ChatSession
from localr1.workers import parse_endpoint, probe_worker
from tests.cli_helpers import LOCALR1, localr1
from tests.workers.conftest import StartWorker, free_port

pytestmark = pytest.mark.model

GREEDY = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 40, "seed": 1}
STORY = "Write a long story about a lighthouse keeper and a storm."
MiB = 2**20


def answer_of(engine: ChatEngine, prompt: str) -> Finished:
    final = None
    for event in engine.chat([ChatMessage("user", prompt)]):
        if isinstance(event, Finished):
            final = event
    assert final is not None
    return final


def test_split_across_two_workers_gives_the_local_greedy_output(two_workers: tuple[str, str],
                                                                demo_path: Path) -> None:
    local = Engine(demo_path, LoadParams(context_size=1024, threads=1, seed=1),
                   SamplingParams(**GREEDY))  # type: ignore[arg-type]
    try:
        expected = answer_of(local, "Name three colors and say why you like them.")
    finally:
        local.close()
    request = LoadRequest(context_size=1024, threads=1, gpu_layers=-1, kv_cache_type="f16", flash_attention=False,
                          workers=two_workers)  # the local engine's cache: the same greedy output
    split = open_engine("demo", request, GREEDY)
    try:
        got = answer_of(split, "Name three colors and say why you like them.")
        load = split.describe()["load"]
    finally:
        split.close()
    assert got.error is None and got.answer == expected.answer and got.stats.generated_tokens > 10
    # the default split gives each worker about a third of the 31 slots (this machine keeps the rest)
    assert len(load["tensor_split"]) == 2 and all(n >= 5 for n in load["tensor_split"])
    assert load["gpu_layers"] == sum(load["tensor_split"])


def test_a_worker_reports_the_memory_it_lends(start_worker: StartWorker) -> None:
    endpoint, _ = start_worker("--mem", "512")
    info = probe_worker(parse_endpoint(endpoint))
    assert info.total == 512 * MiB and 0 < info.free <= 512 * MiB


def test_an_unreachable_worker_is_a_one_line_error_naming_it() -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    done = localr1("run", "--workers", endpoint, "hi")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and endpoint in lines[0] and "localr1 worker" in lines[0]
    with pytest.raises(WorkerError, match=endpoint):
        open_engine("demo", LoadRequest(workers=(endpoint,)))


@pytest.fixture
def not_a_worker() -> Iterator[str]:
    """A TCP server that answers every connection with an HTTP reply, like some other program would."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


def test_another_program_on_the_port_is_an_error_not_a_crash(not_a_worker: str) -> None:
    with pytest.raises(WorkerError, match=r"does not answer as a llama\.cpp RPC worker"):
        open_engine("demo", LoadRequest(workers=(not_a_worker,)))


def test_killing_a_worker_mid_answer_ends_that_answer_and_nothing_else(start_worker: StartWorker,
                                                                      tmp_path: Path) -> None:
    doomed, doomed_proc = start_worker()
    survivor, _ = start_worker()
    engine = open_engine("demo", LoadRequest(context_size=1024, threads=1, gpu_layers=-1, workers=(doomed, survivor)),
                              {**GREEDY, "max_tokens": 400})
    store = ConversationStore(tmp_path / "chat.db")
    session = ChatSession(store)
    session.add_user(STORY, "demo")
    turn = session.start_assistant("demo")
    received: list[str] = []
    final = None
    try:
        for event in engine.chat(session.engine_messages()):
            if isinstance(event, ThinkingDelta | AnswerDelta):
                received.append(event.text)
                if len(received) == 4:
                    doomed_proc.kill()  # the worker's RPC server dies with it
            elif isinstance(event, Finished):
                final = event
        assert final is not None and final.error is not None
        assert final.stats.stop_reason == "error" and doomed in final.error and survivor not in final.error
        assert final.thinking + final.answer == "".join(received) and len(received) < 400
        session.finish(turn, final, final.error)  # what the chat app does with the event
        stored = store.messages(session.conversation_id or 0)[-1]
        assert stored.status == "error" and stored.content == final.answer and stored.content
        probe_worker(parse_endpoint(survivor))  # the other worker is free again and still serves
        with pytest.raises(WorkerError, match=doomed):  # the next message reloads, and says what is missing
            answer_of(engine, "again")
        port = int(doomed.rsplit(":", 1)[1])
        start_worker(port=port)  # the worker is back: the next message works
        assert answer_of(engine, "Name three colors.").error is None
    finally:
        engine.close()
        store.close()


def test_the_cli_keeps_what_arrived_and_exits_with_one_error_line(start_worker: StartWorker) -> None:
    endpoint, proc = start_worker()
    run = subprocess.Popen([*LOCALR1, "run", "--workers", endpoint, "--threads", "1", "-t", "0", "-n", "400",
                            STORY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    assert run.stdout is not None
    printed = b""
    deadline = time.monotonic() + 120
    while len(printed) < 20 and time.monotonic() < deadline:
        printed += os.read(run.stdout.fileno(), 64)
    proc.send_signal(signal.SIGKILL)
    out, err = run.communicate(timeout=120)
    text = (printed + out).decode()
    assert run.returncode == 1 and text.startswith(printed.decode()) and len(text.strip()) >= 20
    lines = err.decode().strip().splitlines()
    assert lines[-1].startswith(f"localr1: error: worker {endpoint} went away mid-answer")
    assert "Traceback" not in err.decode() and sys.executable


def test_plan_counts_each_workers_lent_memory(start_worker: StartWorker) -> None:
    first, _ = start_worker("--mem", "3072")
    second, _ = start_worker("--mem", "1536")
    done = localr1("plan", "r1-qwen-7b", "--hardware", "laptop-8gb", "--ctx", "8192", "--workers",
                   f"{first},{second}", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["workers"] == [first, second] and plan["gpus"] == [first, second]
    on_workers = [plan["memory"][f"GPU{i}"]["total"] for i in range(2)]
    assert all(0 < used <= budget for used, budget in zip(on_workers, plan["budget"]["gpus"], strict=True))
    assert plan["budget"]["gpus"][0] < 3072 * MiB and plan["budget"]["gpus"][1] < 1536 * MiB
    assert plan["tensor_split"][0] > plan["tensor_split"][1] > 0
