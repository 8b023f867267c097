"""The batch engine for a model with layers on RPC workers, in a child process (see localr1/engine/child.py).

llama.cpp aborts the process that loses a worker mid-decode. Here that process is a child holding the
BatchEngine and its Scheduler; this side relays requests and events. When the child dies, every request in
flight ends with a `Finished` naming the lost worker, and the next `prepare` starts a fresh child (probing the
workers first: one still missing is a `WorkerError` naming it). `serve --workers` and `batch --workers` use it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import queue
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localr1.engine.batch.scheduler import failed
from localr1.engine.batch.sequence import SequenceRequest
from localr1.engine.batch.service import Sink
from localr1.engine.child import CLOSE_TIMEOUT_S, ChildProcess, Failed, child_connection, load_or_fail, lost_what
from localr1.engine.engine import PreparedPrompt
from localr1.engine.events import Event, Finished
from localr1.engine.params import LoadParams, SamplingParams
from localr1.engine.rpc_sockets import closed_connections, limit_waits, worker_timeout_s
from localr1.engine.template import ChatMessage
from localr1.errors import LocalR1Error, WorkerError
from localr1.workers import Endpoint, parse_endpoint, probe_workers

REPLY_TIMEOUT_S = 300.0  # a prepare waits behind at most one message of the child's reader


@dataclass(frozen=True)
class _Ready:
    sampling: SamplingParams
    health: dict[str, Any]


@dataclass(frozen=True)
class _WorkerClosed:
    """The child's answer to a prepare when a worker closed its connection while nothing was decoding."""

    peers: tuple[str, ...]


class IsolatedBatch:
    """A BatchService whose model lives in a child process; the child's death ends only the requests in flight."""

    def __init__(self, model_path: str | Path, load: LoadParams, sampling: SamplingParams, parallel: int, *,
                 probed: bool = False) -> None:
        self.model_path = str(model_path)
        self.load_params = load
        self.parallel = parallel
        self.workers: tuple[Endpoint, ...] = tuple(parse_endpoint(w) for w in load.workers)
        self._sampling = sampling
        self._lock = threading.Lock()  # the child, its sinks and its pending replies
        self._start_lock = threading.Lock()  # one (re)start at a time
        self._send_lock = threading.Lock()
        self._child: ChildProcess | None = None
        self._reader: threading.Thread | None = None
        self._sinks: dict[str, Sink] = {}
        self._replies: dict[int, Future[Any]] = {}
        self._tags = itertools.count()
        self._closing = False
        self._facts: dict[str, Any] = {}
        self.lost: str | None = None  # what ended the last child, until a new one runs
        self._start(probe=not probed)

    # -- the child's life ------------------------------------------------------------------------------

    def _start(self, *, probe: bool) -> None:
        if probe:
            probe_workers(self.workers)  # a missing worker is a clear error, not an abort in the child
        child = ChildProcess("localr1.engine.batch.isolated")
        assert child.conn is not None
        try:
            child.conn.send((self.model_path, self.load_params, self._sampling, self.parallel))
            reply = child.conn.recv()
        except (EOFError, OSError):
            code, log = child.reap()
            what, by_worker = lost_what(self.workers, code, log, "while the model was loading")
            raise WorkerError(f"{what}: restart it and try again" if by_worker else what) from None
        except BaseException:  # Ctrl-C while it loads: nothing of the child is left behind
            child.kill()
            raise
        if isinstance(reply, Failed):
            child.reap()
            raise reply.error()
        assert isinstance(reply, _Ready)
        self._sampling, self._facts = reply.sampling, reply.health
        with self._lock:
            self._child, self.lost = child, None
        self._reader = threading.Thread(target=self._read, args=(child,), name="localr1-batch-child", daemon=True)
        self._reader.start()

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._child is None and not self._closing:
                self._start(probe=True)

    def _read(self, child: ChildProcess) -> None:
        conn = child.conn
        assert conn is not None
        with contextlib.suppress(EOFError, OSError):
            while True:
                message = conn.recv()
                if message[0] == "event":
                    self._deliver(message[1], message[2])
                else:  # ("reply", tag, value)
                    with self._lock:
                        future = self._replies.pop(message[1], None)
                    if future is not None:
                        future.set_result(message[2])
        self._gone(child)

    def _deliver(self, request_id: str, event: Event) -> None:
        with self._lock:
            sink = self._sinks.pop(request_id, None) if isinstance(event, Finished) else self._sinks.get(request_id)
        if sink is not None:
            sink(event)

    def _gone(self, child: ChildProcess) -> None:
        """The child ended (closed, or lost with a worker): end what it still had, saying why."""
        with self._lock:
            if self._child is child:
                self._child = None
            sinks, self._sinks = self._sinks, {}
            replies, self._replies = self._replies, {}
        with self._start_lock:  # a fresh child starts only once this one is accounted for
            code, log = child.reap()
            if self._closing:
                error = "the server is shutting down"
            else:
                what, by_worker = lost_what(self.workers, code, log, "mid-answer")
                advice = ("llama.cpp cannot go on without it: restart the worker ('localr1 worker') and send the "
                          "request again (the next request loads the model again)") if by_worker else \
                    "the next request loads the model again"
                self.lost = what
                error = f"{what}; {advice}"
            for future in replies.values():
                future.set_exception(WorkerError(error))
            for sink in sinks.values():
                sink(failed(error))

    def _send(self, message: Any) -> None:
        with self._send_lock:
            child = self._child
            if child is None or child.conn is None:
                raise EOFError
            child.conn.send(message)

    def _ask(self, *request: Any) -> Any:
        """Send a request that has a reply, and wait for it (a lost child is a WorkerError)."""
        future: Future[Any] = Future()
        tag = next(self._tags)
        with self._lock:
            if self._child is None:
                raise WorkerError(f"{self.lost or 'the model process stopped'}: send the request again")
            self._replies[tag] = future
        with contextlib.suppress(EOFError, OSError):  # the reader ends the future then
            self._send((request[0], tag, *request[1:]))
        reply = future.result(REPLY_TIMEOUT_S)
        if isinstance(reply, Failed):
            raise reply.error()
        return reply

    # -- BatchService ----------------------------------------------------------------------------------

    @property
    def sampling(self) -> SamplingParams:
        """The model's default sampling, which requests override."""
        return self._sampling

    def prepare(self, messages: list[ChatMessage]) -> PreparedPrompt:
        """Render and tokenize in the child, starting a fresh one first if the last was lost."""
        self._ensure_started()
        prepared: PreparedPrompt | _WorkerClosed = self._ask("prepare", messages)
        if isinstance(prepared, _WorkerClosed):  # lost while idle: not an answer's failure, a missing worker
            self._stop_child()
            self._ensure_started()  # probes first: one still missing is a WorkerError (503)
            prepared = self._ask("prepare", messages)
        assert not isinstance(prepared, _WorkerClosed), "a fresh child cannot have lost a worker already"
        return prepared

    def _stop_child(self) -> None:
        """Ask the child to stop and wait until its reader has accounted for it."""
        reader = self._reader
        with contextlib.suppress(EOFError, OSError):
            self._send(("close",))
        if reader is not None:
            reader.join(3 * CLOSE_TIMEOUT_S)

    def submit(self, request: SequenceRequest, sink: Sink) -> None:
        """Queue a request in the child; its events go to `sink` from this side's reader thread."""
        with self._lock:
            running = self._child is not None and request.request_id not in self._sinks
            if running:
                self._sinks[request.request_id] = sink
        if not running:
            sink(failed(f"{self.lost or 'the model process stopped'}: send the request again"
                        if self._child is None else f"request id {request.request_id!r} is already running"))
            return
        with contextlib.suppress(EOFError, OSError):  # the reader ends the request then
            self._send(("submit", request))

    def cancel(self, request_id: str) -> None:
        """Stop a request, waiting or running."""
        with contextlib.suppress(EOFError, OSError):
            self._send(("cancel", request_id))

    def health(self) -> dict[str, Any]:
        """The child's counters, or (between a lost child and the next request) the last facts known."""
        with contextlib.suppress(LocalR1Error, TimeoutError):
            if self._child is not None:
                health: dict[str, Any] = self._ask("health")
                return health
        return {**self._facts, "status": "stopped", "active": 0, "waiting": 0,
                "free_slots": self._facts.get("slots", self.parallel),
                "engine": f"stopped ({self.lost or 'closed'}); the next request starts it again"}

    def run(self, requests: list[SequenceRequest]) -> Iterator[tuple[str, Event]]:
        """Run requests to completion (as BatchEngine.run); a lost child raises WorkerError naming the worker."""
        events: queue.SimpleQueue[tuple[str, Event]] = queue.SimpleQueue()
        for request in requests:
            self.submit(request, functools.partial(lambda rid, event: events.put((rid, event)), request.request_id))
        left = len(requests)
        while left:
            try:
                request_id, event = events.get(timeout=0.5)  # a timeout: Ctrl-C is seen between waits
            except queue.Empty:
                continue
            if isinstance(event, Finished):
                left -= 1
                if self.lost is not None and event.error is not None and event.error.startswith(self.lost):
                    raise WorkerError(self.lost)
            yield request_id, event

    def close(self) -> None:
        """End every request at once (as a server shutting down does: a decode waiting on a frozen worker must not
        hold the streams past the server's grace period), stop the child and free the model."""
        with self._start_lock:
            self._closing = True
        with self._lock:
            sinks, self._sinks = self._sinks, {}
        for sink in sinks.values():
            sink(failed("the server is shutting down"))
        with contextlib.suppress(EOFError, OSError):
            self._send(("close",))
        if self._reader is not None:
            self._reader.join(CLOSE_TIMEOUT_S)
        child = self._child
        if child is not None:  # it did not stop: its connection closes, so the reader ends too
            child.reap()


def _child_main(argv: list[str]) -> None:
    """The child: load the BatchEngine, run its Scheduler, and serve prepare, submit, cancel, health, close."""
    from localr1.engine.batch.engine import BatchEngine
    from localr1.engine.batch.scheduler import Scheduler

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it closes this child
    conn = child_connection(argv)
    model_path, load, sampling, parallel = conn.recv()
    engine = load_or_fail(conn, lambda: BatchEngine(model_path, load, sampling, parallel))
    if engine is None:
        return
    limit_waits(worker_timeout_s())  # a frozen worker fails the decode after a while instead of hanging it
    scheduler = Scheduler(engine)
    send_lock = threading.Lock()

    def send(message: Any) -> None:
        with send_lock, contextlib.suppress(OSError):  # the parent is gone: this process ends with it
            conn.send(message)

    send(_Ready(engine.sampling, scheduler.health()))
    try:
        _serve(conn, scheduler, send)
    finally:
        scheduler.close()
        engine.close()


def _serve(conn: Any, scheduler: Any, send: Any) -> None:
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        op = request[0]
        if op == "submit":
            scheduler.submit(request[1], functools.partial(lambda rid, event: send(("event", rid, event)),
                                                           request[1].request_id))
        elif op == "cancel":
            scheduler.cancel(request[1])
        elif op == "prepare":
            try:  # a worker that went away while idle: the next decode would abort this process
                prepared: Any = _WorkerClosed(tuple(closed)) if (closed := closed_connections()) else \
                    scheduler.prepare(request[2])
                limit_waits(worker_timeout_s())  # connections llama.cpp opened since
            except LocalR1Error as exc:
                prepared = Failed.of(exc)
            send(("reply", request[1], prepared))
        elif op == "health":
            send(("reply", request[1], scheduler.health()))
        elif op == "close":
            return


if __name__ == "__main__":  # the messages must pickle as this module's classes, not __main__'s
    from localr1.engine.batch.isolated import _child_main as child_main

    child_main(sys.argv)
