"""Run an event generator in a worker thread and hand its events over through a queue."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class _Done:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class ThreadedStream(Generic[T]):
    """Iterate a blocking generator from another thread; errors re-raise in the consumer."""

    def __init__(self, produce: Callable[[], Iterator[T]]) -> None:
        self._queue: queue.Queue[T | _Done] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(produce,), daemon=True)
        self._thread.start()

    def _pump(self, produce: Callable[[], Iterator[T]]) -> None:
        try:
            for item in produce():
                self._queue.put(item)
        except BaseException as exc:  # handed to the consumer thread
            self._queue.put(_Done(exc))
        else:
            self._queue.put(_Done(None))

    def next(self) -> T | None:
        """The next item, or None when the producer is done; safe to call again after Ctrl-C."""
        while True:
            # A timeout keeps the main thread responsive to Ctrl-C.
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(item, _Done):
                self._queue.put(item)  # stay done for later calls
                if item.error is not None:
                    raise item.error
                return None
            return item

    def __iter__(self) -> Iterator[T]:
        while (item := self.next()) is not None:
            yield item
