"""SIGTERM (`kill`, a closing session manager) ends the app as Ctrl+Q does: the answer so far saved, the terminal
given back, exit 143."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from textual.app import App

TERMINATED = 143  # the exit code a shell reports for a command stopped by SIGTERM


def exit_on_sigterm(app: App[Any]) -> None:
    """From now on SIGTERM exits the app with code 143 (where the event loop can take signals)."""
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # no such support, or not main thread
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: app.exit(return_code=TERMINATED))


def release_sigterm() -> None:
    """Give SIGTERM back to its default (the app is closing)."""
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
