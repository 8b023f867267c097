"""Untrusted text (GGUF metadata, file names, error messages) made safe to print on a terminal.

Rich's `Text` already keeps `[markup]` literal, but it passes escape sequences through: a model
name holding ESC or BEL could retitle the terminal, clear the screen or forge output.
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 controls but tab and newline, DEL, and the C1 controls (U+009B is a one-character CSI).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
LIMIT = 1000


def printable(text: str, limit: int | None = LIMIT) -> str:
    """`text` with control characters shown as `\\x1b` escapes, cut at `limit` characters (None: never)."""
    shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    if limit is not None and len(shown) > limit:
        return f"{shown[:limit]}… ({len(shown) - limit} more characters)"
    return shown


def plain(text: str, style: str = "", limit: int | None = LIMIT) -> Text:
    """A Rich Text that shows `text` as written: no markup, no escape sequences."""
    return Text(printable(text, limit), style=style)
