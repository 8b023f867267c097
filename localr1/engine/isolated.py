"""A model split across RPC workers, run in a child process so that losing a worker loses only the answer.

llama.cpp's RPC client aborts the process (ggml-rpc.cpp: "Remote RPC server crashed or returned malformed
response") when a worker goes away mid-answer; there is no error code to catch. The child holds the
Engine; this side relays the engine's events, keeps the text that arrived, and when the child dies ends
the answer with a `Finished` carrying an error. The next message reloads the model (the workers must be
back by then). The child's stderr goes to a file, so llama.cpp's abort message never reaches a terminal UI.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from localr1.engine.child import ChildProcess, Failed, child_connection, load_or_fail, lost_what
from localr1.engine.events import AnswerDelta, Event, Finished, GenerationStats, ThinkingDelta
from localr1.engine.params import LoadParams, SamplingParams
from localr1.engine.rpc_sockets import limit_waits, worker_timeout_s
from localr1.engine.template import ChatMessage
from localr1.engine.thinking import ThinkingControl
from localr1.errors import LocalR1Error, WorkerError
from localr1.workers import Endpoint, parse_endpoint, probe_workers


@dataclass(frozen=True)
class _Ready:
    context_size: int
    load_params: LoadParams
    facts: dict[str, Any]


@dataclass(frozen=True)
class _Count:
    tokens: int


class IsolatedEngine:
    """The ChatEngine for a model with layers on RPC workers: the Engine lives in a child process."""

    def __init__(self, model_path: str | Path, load: LoadParams, sampling: SamplingParams, *,
                 probed: bool = False) -> None:
        self.model_path = str(model_path)
        self.sampling = sampling
        self.load_params = load
        self.workers: tuple[Endpoint, ...] = tuple(parse_endpoint(w) for w in load.workers)
        self._lock = threading.Lock()  # one request or answer at a time
        self._send_lock = threading.Lock()
        self._child: ChildProcess | None = None
        self._conn: Connection | None = None
        self._facts: dict[str, Any] = {}
        self._context_size = load.context_size
        self._start(probe=not probed)

    # -- the child's life ------------------------------------------------------------------------------

    def _start(self, *, probe: bool) -> None:
        if probe:
            probe_workers(self.workers)  # an unreachable worker is a clear error, not an abort in the child
        self._child = ChildProcess("localr1.engine.isolated")
        self._conn = self._child.conn
        assert self._conn is not None
        try:
            self._conn.send((self.model_path, self.load_params, self.sampling))
            reply = self._conn.recv()
        except (EOFError, OSError):
            raise self._load_lost() from None
        except BaseException:  # Ctrl-C while it loads: nothing of the child is left behind
            self._child.kill()
            self._child = self._conn = None
            raise
        if isinstance(reply, Failed):
            self._reap()
            raise reply.error()
        assert isinstance(reply, _Ready)
        self._context_size = reply.context_size
        self.load_params = replace(reply.load_params, workers=self.load_params.workers)
        self._facts = reply.facts

    def _load_lost(self) -> WorkerError:
        code, log = self._reap()
        what, by_worker = lost_what(self.workers, code, log, "while the model was loading")
        return WorkerError(f"{what}: restart it and try again" if by_worker else what)

    def _reap(self) -> tuple[int | None, str]:
        """Wait for a dead or closing child; return its exit code and what it wrote to stderr."""
        self._conn = None
        child, self._child = self._child, None
        return child.reap() if child is not None else (None, "")

    @property
    def alive(self) -> bool:
        """True while the child process holds the model."""
        return self._conn is not None

    # -- ChatEngine ------------------------------------------------------------------------------------

    @property
    def context_size(self) -> int:
        """Tokens the context window holds."""
        return self._context_size

    def describe(self) -> dict[str, Any]:
        """The engine's facts, and the workers it uses."""
        return {**self._facts, "load": self.load_params.as_dict(), "workers": [str(w) for w in self.workers]}

    def count_tokens(self, text: str) -> int:
        """Tokens in plain text, counted by the child's vocabulary."""
        with self._lock:
            self._ensure_started()
            assert self._conn is not None
            try:
                self._send(("count", text))
                reply = self._conn.recv()
            except (EOFError, OSError):
                self._reap()
                raise WorkerError("the model was lost with a worker: restart the worker and send again") from None
            if isinstance(reply, Failed):
                raise reply.error()
            assert isinstance(reply, _Count)
            return reply.tokens

    def chat(self, messages: list[ChatMessage], sampling: SamplingParams | None = None,
             thinking: ThinkingControl | None = None) -> Iterator[Event]:
        """Stream the reply from the child; a lost worker ends it with an error and what arrived."""
        with self._lock:
            self._ensure_started()
            yield from self._relay(messages, sampling or self.sampling, thinking)

    def _relay(self, messages: list[ChatMessage], sampling: SamplingParams,
               control: ThinkingControl | None) -> Iterator[Event]:
        assert self._conn is not None
        thinking: list[str] = []
        answer: list[str] = []
        started = time.perf_counter()
        first: float | None = None
        finished = False
        try:
            self._send(("chat", messages, sampling, control))
            while True:
                try:
                    event = self._conn.recv()
                except (EOFError, OSError):
                    finished = True
                    yield self._lost(thinking, answer, started, first)
                    return
                if isinstance(event, Failed):
                    finished = True
                    raise event.error()
                if isinstance(event, ThinkingDelta | AnswerDelta):
                    first = first or time.perf_counter()
                    (thinking if isinstance(event, ThinkingDelta) else answer).append(event.text)
                yield event
                if isinstance(event, Finished):
                    finished = True
                    return
        finally:
            if not finished and self._conn is not None:  # the caller stopped early: end the child's answer too
                self.cancel()
                self._drain()

    def _drain(self) -> None:
        try:
            while self._conn is not None and not isinstance(self._conn.recv(), Finished | Failed):
                pass
        except (EOFError, OSError):
            self._reap()

    def _lost(self, thinking: list[str], answer: list[str], started: float, first: float | None) -> Finished:
        code, log = self._reap()
        what, _ = lost_what(self.workers, code, log, "mid-answer")
        error = (f"{what}; the answer so far is kept. llama.cpp cannot go on without it: restart the worker, "
                 "and the next message loads the model again")
        now = time.perf_counter()
        stats = GenerationStats(
            prompt_tokens=0, prompt_eval_tokens=0, cached_tokens=0, generated_tokens=len(thinking) + len(answer),
            time_to_first_token_s=(first or now) - started, decode_s=now - (first or now), decode_tokens_per_s=0.0,
            stop_reason="error")
        return Finished("".join(thinking), "".join(answer), stats, error)

    def _ensure_started(self) -> None:
        if self._conn is None:
            self._start(probe=True)

    def _send(self, message: Any) -> None:
        with self._send_lock:
            if self._conn is None:
                raise EOFError
            self._conn.send(message)

    def cancel(self) -> None:
        """Stop the running answer (from any thread)."""
        with contextlib.suppress(EOFError, OSError):
            self._send(("cancel",))

    def answer_now(self) -> None:
        """End the thinking and answer with what was thought so far (from any thread)."""
        with contextlib.suppress(EOFError, OSError):
            self._send(("answer_now",))

    def close(self) -> None:
        """Stop the child and free the model (the workers free their buffers when it disconnects)."""
        with contextlib.suppress(EOFError, OSError):
            self._send(("close",))
        self._reap()


def _child_main(argv: list[str]) -> None:
    """The child: load the Engine, then serve chat, cancel, count and close requests."""
    from localr1.engine.engine import Engine

    conn = child_connection(argv)
    model_path, load, sampling = conn.recv()
    engine = load_or_fail(conn, lambda: Engine(model_path, load, sampling))
    if engine is None:
        return
    limit_waits(worker_timeout_s())  # a frozen worker fails the answer after a while instead of hanging it
    conn.send(_Ready(engine.context_size, engine.load_params, engine.describe()))
    _serve(conn, engine)


def _serve(conn: Connection, engine: Any) -> None:
    send_lock = threading.Lock()
    stop = threading.Event()
    worker: threading.Thread | None = None

    def send(message: Any) -> None:
        with send_lock:
            conn.send(message)

    def answer(messages: list[ChatMessage], sampling: SamplingParams, control: ThinkingControl | None) -> None:
        try:
            for event in engine.chat(messages, sampling, control):
                if stop.is_set():  # a cancel that came before the engine cleared its own flag
                    engine.cancel()
                send(event)
        except LocalR1Error as exc:
            send(Failed.of(exc))
        except Exception as exc:
            send(Failed("LocalR1Error", f"generation failed: {exc}"))

    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            break
        op = request[0]
        if op == "chat":
            stop.clear()
            worker = threading.Thread(target=answer, args=request[1:], daemon=True)
            worker.start()
        elif op == "cancel":
            stop.set()
            engine.cancel()
        elif op == "answer_now":
            engine.answer_now()
        elif op == "count":
            try:
                send(_Count(engine.count_tokens(request[1])))
            except LocalR1Error as exc:
                send(Failed.of(exc))
        elif op == "close":
            break
    if worker is not None and worker.is_alive():
        engine.cancel()
        worker.join()
    engine.close()


if __name__ == "__main__":  # the messages must pickle as localr1.engine.isolated's classes, not __main__'s
    from localr1.engine.isolated import _child_main as child_main

    child_main(sys.argv)
