"""`localr1 serve` against hostile bodies and a stop while clients are streaming."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.cli_helpers import LOCALR1, localr1
from tests.server.conftest import LiveServer, post


def test_a_key_clients_cannot_send_is_refused_before_loading(tmp_path: Path) -> None:
    result = localr1("serve", "--port", "0", "--api-key", "ключ-123", timeout=60)
    assert result.returncode == 1 and "printable ASCII" in result.stderr, result.stderr
    key = tmp_path / "key"
    key.write_text("k\x07ey\n", encoding="utf-8")
    result = localr1("serve", "--port", "0", "--api-key-file", str(key), timeout=60)
    assert result.returncode == 1 and "printable ASCII" in result.stderr, result.stderr


@pytest.mark.model
def test_deeply_nested_json_is_a_400_and_the_server_stays_up(live: LiveServer) -> None:
    status, body = post(live.url + "/chat/completions", b"[" * 30_000 + b"]" * 30_000)
    assert status == 400 and body["error"]["code"] == "invalid_json" and "deeply" in body["error"]["message"]
    assert live.health()["status"] == "ok"


@pytest.mark.model
def test_an_unpaired_surrogate_escape_is_a_400_naming_it(live: LiveServer) -> None:
    raw = b'{"messages": [{"role": "user", "content": "hi \\ud800 there"}], "max_tokens": 2}'
    status, body = post(live.url + "/chat/completions", raw)
    assert status == 400 and "invalid character" in body["error"]["message"], body
    assert live.health()["status"] == "ok"


@pytest.mark.model
@pytest.mark.parametrize(("body", "param", "words"), [
    ({"messages": [{"role": "user", "content": None}]}, "messages", "messages[0].content is missing"),
    ({"messages": [{"role": "user"}]}, "messages", "messages[0].content is missing"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream": True, "stream_options": {"include_usage": "x"}},
     "stream_options", "include_usage"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream_options": "yes"}, "stream_options", "an object"),
])
def test_a_user_message_without_text_or_bad_stream_options_is_a_400(live: LiveServer, body: dict[str, object],
                                                                      param: str, words: str) -> None:
    status, reply = post(live.url + "/chat/completions", json.dumps({**body, "max_tokens": 2}).encode())
    assert status == 400 and reply["error"]["param"] == param and words in reply["error"]["message"], reply
    assert live.health()["status"] == "ok"


@pytest.mark.model
def test_an_assistant_turn_without_content_is_accepted(live: LiveServer) -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None},
                {"role": "user", "content": "Bye"}]
    status, reply = post(live.url + "/chat/completions", json.dumps({"messages": messages, "max_tokens": 2}).encode())
    assert status == 200 and reply["choices"][0]["message"]["role"] == "assistant", reply


def _stream(port: int, out: list[bytes], first: threading.Event) -> None:
    """One streamed request; every byte of the reply into `out`; `first` set at the first data line."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = {"messages": [{"role": "user", "content": "Tell me a long story about a dragon."}], "max_tokens": 400,
            "stream": True, "loop_guard": "off"}
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        reply = conn.getresponse()
        while chunk := reply.read1(4096):
            out.append(chunk)
            if b"data:" in b"".join(out):
                first.set()
    except OSError as exc:
        out.append(f"\n<{type(exc).__name__}>".encode())
    finally:
        first.set()
        conn.close()


@pytest.mark.model
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopping_the_server_ends_running_and_waiting_streams_cleanly(sig: signal.Signals, tmp_path: Path) -> None:
    proc = subprocess.Popen([*LOCALR1, "serve", "--port", "0", "--parallel", "1", "--ctx", "512", "-n", "400"],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stderr is not None
    try:
        match = re.search(r"http://127\.0\.0\.1:(\d+)/v1", proc.stderr.readline())
        assert match
        port = int(match.group(1))
        running: list[bytes] = []
        waiting: list[bytes] = []
        started, queued = threading.Event(), threading.Event()
        threads = [threading.Thread(target=_stream, args=(port, running, started))]
        threads[0].start()
        assert started.wait(120)
        threads.append(threading.Thread(target=_stream, args=(port, waiting, queued)))  # no free slot for it
        threads[1].start()
        assert queued.wait(60)
        time.sleep(0.5)
        proc.send_signal(sig)
        for thread in threads:
            thread.join(60)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    err = proc.stderr.read()
    assert "Traceback" not in err, err
    run_text, wait_text = b"".join(running).decode(), b"".join(waiting).decode()
    assert run_text.rstrip().endswith("data: [DONE]"), run_text[-300:]
    assert '"finish_reason": "stop"' in run_text
    assert "shutting down" in wait_text and wait_text.rstrip().endswith("data: [DONE]"), wait_text[-300:]
    with socket.socket() as again:  # the port is free for the next `localr1 serve` (which sets SO_REUSEADDR too)
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
        again.listen(1)
