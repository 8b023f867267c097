"""What the app changes while an answer streams, so that its UI thread holds back the model as little as it can.

The model's thread runs Python between its llama.cpp calls (sampling, detokenizing), and needs the GIL for
that; while the UI thread holds the GIL (a frame's layout and paint), llama.cpp's threads wait. A waiting
thread gets the GIL after the switch interval (5 ms by default), so a frame could stall the model for that
long at every one of its calls; while streaming the interval is shorter. The prompt's cursor stays lit: each
blink redraws the editor on the UI thread (issue 12; benchmarks/app_decode_cpu.py measures both).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from textual.widgets import TextArea

STREAMING_SWITCH_INTERVAL_S = 0.0005


class StreamingMode:
    """Entered when an answer starts streaming, left when it has been shown."""

    def __init__(self, prompt: Callable[[], TextArea]) -> None:
        self.prompt = prompt
        self._saved_interval: float | None = None

    def set(self, streaming: bool) -> None:
        """Enter (True) or leave (False); entering twice or leaving when not entered changes nothing."""
        self.prompt().cursor_blink = not streaming
        if streaming and self._saved_interval is None:
            self._saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._saved_interval, STREAMING_SWITCH_INTERVAL_S))
        elif not streaming:
            self.restore()

    def restore(self) -> None:
        """The switch interval as it was before streaming (at exit too: tests run many apps in one process)."""
        if self._saved_interval is not None:
            sys.setswitchinterval(self._saved_interval)
            self._saved_interval = None
