"""When Python's cyclic garbage collector runs in the chat app: never a full collection while the user types.

Widgets are full of reference cycles, so a transcript the user leaves is freed only by a full
collection. Freezing after every answer (before issue 12) kept full collections short by moving
everything alive into the permanent generation, including the transcripts the user then left, which
were never freed again (~32 MiB per conversation). Now:
- what exists at start-up (modules, classes, the app's skeleton) is frozen once;
- automatic full collections are switched off (young generations are still collected as usual); a
  full collection runs instead when no answer streams and the user has not pressed a key for IDLE_S,
  once as much has piled up as would have triggered one automatically, and shortly after a
  conversation switch or an answer; the pager keeps the mounted transcript small, so each is short.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from textual.widget import Widget

from localr1.tui.activity import quiet_for

IDLE_S = 1.0  # no key for this long counts as idle
AFTER_S = 0.5  # a switch or an answer: collect this long after, once idle
NO_AUTOMATIC_FULL = 1_000_000_000  # gen-2 threshold: in effect, never
FULL_AFTER = 10  # young collections since the last full one that make one due (CPython's default)

_saved: list[tuple[int, int, int]] = []  # the thresholds before start(), while the app runs


def start() -> None:
    """At app start, before any conversation is shown: freeze what lives as long as the app."""
    gc.freeze()
    if not _saved:
        _saved.append(gc.get_threshold())
        gc.set_threshold(_saved[0][0], _saved[0][1], NO_AUTOMATIC_FULL)


def stop() -> None:
    """At app exit: the collector as it was (tests run many apps in one process)."""
    if _saved:
        gc.set_threshold(*_saved.pop())
    gc.unfreeze()


def collect_if_due(*, streaming: bool) -> bool:
    """Called every second: a full collection when idle and as much piled up as CPython would wait for.

    Never while an answer streams (its rendering would stall); its garbage is collected once it ends.
    """
    if _saved and not streaming and gc.get_count()[2] >= FULL_AFTER and quiet_for(IDLE_S):
        gc.collect()
        return True
    return False


def collect_soon(widget: Widget, streaming: Callable[[], bool]) -> None:
    """After a conversation switch or an answer: free what was left behind once the user is idle
    and no answer streams."""

    def attempt() -> None:
        if quiet_for(IDLE_S) and not streaming():
            gc.collect()
        else:
            widget.set_timer(AFTER_S, attempt, name="collect garbage")

    widget.set_timer(AFTER_S, attempt, name="collect garbage")
