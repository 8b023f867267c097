"""Progress for the slow steps: rich bars on a terminal, nothing in tests and library use."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter(Protocol):
    """Where the pipeline says what it is doing."""

    def note(self, text: str) -> None:
        """A one-line message."""

    def start(self, description: str, total: float) -> None:
        """Begin a step measured in `total` units."""

    def advance(self, completed: float, total: float | None = None) -> None:
        """Set the current step's progress."""

    def finish(self, text: str | None = None) -> None:
        """End the current step, optionally leaving a line behind."""


class NullReporter:
    """Says nothing."""

    def note(self, text: str) -> None:
        """Ignore."""

    def start(self, description: str, total: float) -> None:
        """Ignore."""

    def advance(self, completed: float, total: float | None = None) -> None:
        """Ignore."""

    def finish(self, text: str | None = None) -> None:
        """Ignore."""


class RichReporter:
    """One rich progress bar per step, on stderr by default; finished steps leave a line."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("·"), TimeRemainingColumn(), TextColumn("left"),  # time left: estimated from the recent rate
            console=self.console, transient=True,
            disable=not self.console.is_terminal,  # off a terminal a stopped bar would leave an empty line
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()

    def note(self, text: str) -> None:
        """Print a line above the bars."""
        self._progress.console.print(text, highlight=False, markup=False)  # file and model names are not markup

    def start(self, description: str, total: float) -> None:
        """Replace the current bar with a new one."""
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total)

    def advance(self, completed: float, total: float | None = None) -> None:
        """Move the current bar."""
        if self._task is not None:
            self._progress.update(self._task, completed=completed, total=total)

    def finish(self, text: str | None = None) -> None:
        """Drop the bar; print text in its place."""
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        if text:
            self.note(text)
