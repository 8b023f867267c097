"""Signals during long steps: SIGTERM stopped the way Ctrl-C stops, and cleanup that a second Ctrl-C cannot cut."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the command stops as on Ctrl-C (the same cleanup) and exits 143."""


@dataclass
class Termination:
    """Whether SIGTERM arrived in the block (for a command that turns Ctrl-C into a result of its own)."""

    terminated: bool = False


@contextmanager
def terminate_as_interrupt() -> Iterator[Termination]:
    """While the block runs, SIGTERM goes through the SIGINT handler in place (which keeps a Ctrl-C that lands in
    llama.cpp's log callback for later) and comes out of the block as Terminated."""
    state = Termination()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        state.terminated = True
        if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):  # nothing would raise
            raise Terminated
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield state
    except KeyboardInterrupt:
        if state.terminated:
            raise Terminated from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block runs (removing a temporary folder, say) and deliver the first one
    that arrived once it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if pending:
            signal.raise_signal(pending[0])
