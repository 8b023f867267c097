"""uvicorn's server, ending the running sequences when it is asked to stop (Ctrl-C, SIGTERM)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import FrameType

import uvicorn


class StoppingServer(uvicorn.Server):
    """On Ctrl-C or SIGTERM, also stop generating: streams then end with their last chunk and `[DONE]` within the
    grace period, instead of being cut (and logged as tracebacks) after it."""

    def __init__(self, config: uvicorn.Config, stop_generating: Callable[[], None]) -> None:
        super().__init__(config)
        self._stop_generating = stop_generating

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # a thread: stopping waits for the decode under way, and a signal handler must not block
        threading.Thread(target=self._stop_generating, name="localr1-stop", daemon=True).start()
