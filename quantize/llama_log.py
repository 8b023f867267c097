"""Capture llama.cpp's log while a call runs: for progress, for error messages, and to keep the terminal clean."""

from __future__ import annotations

import ctypes
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import llama_cpp
import llama_cpp._logger as llama_logger

LineHandler = Callable[[str], None]
_lock = threading.RLock()
GGML_LOG_LEVEL_ERROR = 4  # ggml.h: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5
GGML_LOG_LEVEL_CONT = 5


class LogCapture:
    """Lines of llama.cpp's log, assembled from the pieces it sends (a line may arrive in parts)."""

    def __init__(self, on_line: LineHandler | None = None, keep: int = 200) -> None:
        self.on_line = on_line
        self.keep = keep
        self.lines: list[str] = []
        self._partial = ""
        self._level = 0
        self.errors: list[str] = []
        self.interrupted = False  # a Ctrl-C landed inside the callback (it cannot cross back into C)

    def feed(self, level: int, text: str) -> None:
        """Take one piece of log text; complete lines go to the handler with the level of their first piece."""
        if level not in (GGML_LOG_LEVEL_CONT, self._level):  # a new message, not a continuation
            if self._partial:
                self._line(self._level, self._partial)
                self._partial = ""
            self._level = level
        self._partial += text
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            self._line(self._level, line)

    def _line(self, level: int, line: str) -> None:
        if not line.strip():
            return
        self.lines.append(line)
        if len(self.lines) > self.keep:
            del self.lines[: len(self.lines) - self.keep]
        if level == GGML_LOG_LEVEL_ERROR:
            self.errors.append(line.strip())
        if self.on_line is not None:
            self.on_line(line)

    def last_error(self) -> str | None:
        """The last error line llama.cpp logged, without its decoration (its final verdict first)."""
        for line in reversed(self.errors):
            if "failed to quantize:" in line:
                return line.split("failed to quantize:", 1)[1].strip()
        for line in reversed(self.errors):
            text = line.strip(" =\t")
            if text:
                return text
        return None


@contextmanager
def capture_llama_log(on_line: LineHandler | None = None) -> Iterator[LogCapture]:
    """Route llama.cpp's log to a LogCapture for the duration of the block, then restore the default.

    A Ctrl-C that Python would raise inside the callback (even at its first line, before any `try`) cannot cross
    back into C: ctypes would print "Exception ignored" and drop it. So while the block runs, SIGINT that lands in
    the callback is only noted, and handed to the handler in place once the block ends.
    """
    capture = LogCapture(on_line)

    def callback(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        try:  # an exception must never cross back into C
            if not capture.interrupted:
                capture.feed(level, text.decode("utf-8", errors="replace"))
        except KeyboardInterrupt:  # raised deeper (in feed or the line handler): noted the same way
            capture.interrupted = True
        except Exception:  # a log line is not worth a crash
            pass

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if frame is not None and frame.f_code is callback.__code__:
            capture.interrupted = True
            return
        _hand_on(previous, signum, frame)

    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    c_callback = llama_cpp.llama_log_callback(callback)
    with _lock:
        if main:
            signal.signal(signal.SIGINT, on_sigint)
        llama_cpp.llama_log_set(c_callback, ctypes.c_void_p(0))
        try:
            yield capture
        finally:
            if llama_logger.logger.level == logging.NOTSET:  # as llama_cpp.Llama(verbose=False) leaves it
                llama_logger.set_verbose(False)
            llama_cpp.llama_log_set(llama_logger.llama_log_callback, ctypes.c_void_p(0))
            if main:
                signal.signal(signal.SIGINT, previous)
        if capture.interrupted:
            _hand_on(previous, signal.SIGINT, None)


def _hand_on(handler: object, signum: int, frame: FrameType | None) -> None:
    """Do what the SIGINT handler in place would have done."""
    if callable(handler):
        handler(signum, frame)
    elif handler != signal.SIG_IGN:
        raise KeyboardInterrupt
