"""A thread that owns a BatchEngine: requests from any thread are admitted into free slots as they open.

Each request gives a sink, called from the scheduler thread with each of its events (the last one a
`Finished`). Cancelling a request that is running stops its sequence at the next step and frees its slot.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localr1.engine.batch.engine import BatchEngine
from localr1.engine.batch.sequence import SequenceRequest
from localr1.engine.engine import PreparedPrompt
from localr1.engine.events import Event, Finished, GenerationStats
from localr1.engine.params import SamplingParams
from localr1.engine.template import ChatMessage

Sink = Callable[[Event], None]
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Submit:
    request: SequenceRequest
    sink: Sink


@dataclass(frozen=True)
class _Cancel:
    request_id: str


class Scheduler:
    """Runs the batch loop in its own thread; `submit`, `cancel` and `close` may be called from any thread."""

    def __init__(self, engine: BatchEngine) -> None:
        self.engine = engine
        self._inbox: queue.SimpleQueue[_Submit | _Cancel | None] = queue.SimpleQueue()
        self._waiting: deque[_Submit] = deque()
        self._sinks: dict[str, Sink] = {}
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="localr1-batch", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        """Requests submitted but not admitted yet."""
        return len(self._waiting)

    @property
    def sampling(self) -> SamplingParams:
        """The model's default sampling, which requests override."""
        return self.engine.sampling

    def prepare(self, messages: list[ChatMessage]) -> PreparedPrompt:
        """Render and tokenize a conversation for `submit` (from any thread)."""
        return self.engine.prepare(messages)

    def health(self) -> dict[str, Any]:
        """Slots and load now, for monitoring (and for tests that check requests shared the batch)."""
        engine = self.engine
        return {"slots": engine.parallel, "slot_context": engine.slot_context, "active": engine.active,
                "waiting": self.waiting, "free_slots": engine.free_slots, "peak_active": engine.peak_active,
                "steps": engine.steps, "stopped": dict(engine.stopped), "load": engine.load_params.as_dict()}

    def submit(self, request: SequenceRequest, sink: Sink) -> None:
        """Queue a request; its events go to `sink` from the scheduler thread."""
        if self._closed or not self._thread.is_alive():
            sink(failed("the batch scheduler is not running"))
            return
        self._inbox.put(_Submit(request, sink))

    def cancel(self, request_id: str) -> None:
        """Stop a request, waiting or running (its slot is freed at the next step)."""
        self._inbox.put(_Cancel(request_id))

    def close(self) -> None:
        """Stop every sequence and the thread; the engine stays open for its owner to close. Any thread may call
        it, more than once: each call returns only when the thread has stopped (the engine may be freed then)."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._inbox.put(None)
                self.engine.abort()
        self._thread.join()

    def _take(self, message: _Submit | _Cancel) -> None:
        if isinstance(message, _Submit):
            self._waiting.append(message)
            return
        for item in self._waiting:
            if item.request.request_id == message.request_id:
                self._waiting.remove(item)
                return
        self.engine.cancel(message.request_id)

    def _deliver(self, request_id: str, event: Event) -> None:
        sink = self._sinks.get(request_id)
        if sink is None:
            return
        if isinstance(event, Finished):
            del self._sinks[request_id]
        try:
            sink(event)
        except Exception:  # a consumer's failure must not stop the other sequences
            _log.exception("a request's event handler failed")

    def _loop(self) -> None:
        try:
            self._run()
        except Exception as exc:  # a bug: end every request with an error rather than leave it waiting forever
            _log.exception("the batch scheduler failed")
            for sink in self._sinks.values():
                sink(failed(f"the batch scheduler failed: {exc}"))
            self._sinks.clear()
            for item in self._waiting:
                item.sink(failed(f"the batch scheduler failed: {exc}"))
            self._waiting.clear()

    def _run(self) -> None:
        engine = self.engine
        while True:
            idle = not engine.active and not self._waiting
            try:
                message = self._inbox.get() if idle else self._inbox.get_nowait()
                while True:
                    if message is None:
                        self._stop_all()
                        return
                    self._take(message)
                    message = self._inbox.get_nowait()
            except queue.Empty:
                pass
            while self._waiting and engine.free_slots:
                item = self._waiting.popleft()
                self._sinks[item.request.request_id] = item.sink
                engine.admit(item.request)
            for request_id, event in engine.step():
                self._deliver(request_id, event)

    def _stop_all(self) -> None:
        for item in self._waiting:  # their clients would otherwise wait for an answer that never comes
            item.sink(failed("the server is shutting down"))
        self._waiting.clear()
        for request_id in list(self._sinks):
            self.engine.cancel(request_id)
        while self.engine.active:
            for request_id, event in self.engine.step():
                self._deliver(request_id, event)


def failed(error: str) -> Finished:
    """A request's last event when it ends before it ran, or with no reply."""
    return Finished("", "", GenerationStats(0, 0, 0, 0, 0.0, 0.0, 0.0, "error"), error)
