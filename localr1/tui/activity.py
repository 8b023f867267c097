"""When the user last pressed a key or used the mouse: background work waits for a pause."""

from __future__ import annotations

import time

_last_input = [0.0]  # monotonic time of the last input


def note_input() -> None:
    """A key or mouse event arrived (the app calls this for each one)."""
    _last_input[0] = time.monotonic()


def quiet_for(seconds: float) -> bool:
    """True when no input arrived in the last `seconds`."""
    return time.monotonic() - _last_input[0] >= seconds
