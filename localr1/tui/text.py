"""Turning exceptions into the one line a notification shows."""

from __future__ import annotations

from localr1.errors import LocalR1Error
from localr1.plaintext import printable

MAX_CHARS = 300


def one_line(exc: BaseException) -> str:
    """A user error's own message; anything else as 'Type: message'; either way on one line."""
    text = str(exc) if isinstance(exc, LocalR1Error) else f"{exc.__class__.__name__}: {exc}".rstrip(": ")
    text = printable(" ".join(text.split()), limit=None)
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"
