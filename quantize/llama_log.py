"""Capture llama.cpp's log while a call runs: for progress, for error messages, and to keep the terminal clean."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import llama_cpp._logger as llama_logger

from localr1.engine.llama_log import LogRoute, routed_llama_log

LineHandler = Callable[[str], None]
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
        self.route = LogRoute()

    @property
    def interrupted(self) -> bool:
        """Whether a Ctrl-C landed inside the callback (it cannot cross back into C)."""
        return self.route.interrupted

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
    """Route llama.cpp's log to a LogCapture for the duration of the block, then restore the logger set before.
    A Ctrl-C that lands in the callback is raised when the block ends (see routed_llama_log)."""
    capture = LogCapture(on_line)
    try:
        with routed_llama_log(lambda level, text: capture.feed(level, text.decode("utf-8", errors="replace"))) \
                as capture.route:
            yield capture
    finally:
        if llama_logger.logger.level == logging.NOTSET:  # as llama_cpp.Llama(verbose=False) leaves it
            llama_logger.set_verbose(False)
