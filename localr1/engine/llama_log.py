"""Route llama.cpp's log to a Python function while a block runs, without losing a Ctrl-C that lands in it."""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import CodeType, FrameType

import llama_cpp

PieceHandler = Callable[[int, bytes], None]  # (ggml log level, a piece of text)
_lock = threading.RLock()


@dataclass
class LogRoute:
    """What happened while the log was routed."""

    interrupted: bool = False  # a Ctrl-C landed inside the callback (it cannot cross back into C)


@contextmanager
def routed_llama_log(on_piece: PieceHandler, *, chain: bool = False) -> Iterator[LogRoute]:
    """Send llama.cpp's log pieces to `on_piece` (and on to the logger set before, with `chain`), then put that
    logger back.

    A Ctrl-C that Python raises inside the callback (even at its first line, before any `try`) cannot cross back
    into C: ctypes would print "Exception ignored" and drop it. So while the block runs, SIGINT that lands in the
    callback is only noted, and handed to the SIGINT handler in place once the block ends.
    """
    route = LogRoute()
    previous = llama_cpp.llama_log_callback()
    previous_data = ctypes.c_void_p()
    llama_cpp.llama_log_get(ctypes.byref(previous), ctypes.byref(previous_data))

    def callback(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        try:  # an exception must never cross back into C
            if not route.interrupted:
                on_piece(level, text)
                if chain and previous:
                    previous(level, text, previous_data)
        except KeyboardInterrupt:  # raised deeper (in the handler or the chained logger): noted the same way
            route.interrupted = True
        except Exception:  # a log line is not worth a crash
            pass

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if _inside(frame, callback.__code__):  # also in a chained logger: a ctypes callback of its own
            route.interrupted = True
            return
        _hand_on(previous_handler, signum, frame)

    main = threading.current_thread() is threading.main_thread()
    previous_handler = signal.getsignal(signal.SIGINT) if main else None
    c_callback = llama_cpp.llama_log_callback(callback)  # referenced until the previous logger is back
    with _lock:
        if main:
            signal.signal(signal.SIGINT, on_sigint)
        llama_cpp.llama_log_set(c_callback, ctypes.c_void_p(0))
        try:
            yield route
        finally:
            llama_cpp.llama_log_set(previous, previous_data)
            if main:
                signal.signal(signal.SIGINT, previous_handler)
        if route.interrupted:
            _hand_on(previous_handler, signal.SIGINT, None)


def _inside(frame: FrameType | None, code: CodeType) -> bool:
    """Whether this frame or one of its callers runs `code`."""
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


def _hand_on(handler: object, signum: int, frame: FrameType | None) -> None:
    """Do what the SIGINT handler in place would have done."""
    if callable(handler):
        handler(signum, frame)
    elif handler != signal.SIG_IGN:
        raise KeyboardInterrupt
