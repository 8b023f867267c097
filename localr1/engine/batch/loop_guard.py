"""Degenerate repetition in a token stream: a span of 4 to 256 tokens repeated three times in a row.

Only periods at which the newest token already occurred are looked at, and each keeps a running
count of consecutive matches, so a token costs a few dictionary operations, not a window scan.
(The reasoning-controls work adds a fuller guard to the single-sequence engine; the lead merges them.)
"""

from __future__ import annotations

from collections import deque
from typing import Literal

LoopGuardMode = Literal["off", "warn", "act"]
MIN_PERIOD = 4
MAX_PERIOD = 256
REPEATS = 3


class LoopGuard:
    """Feed tokens one at a time; `feed` is True once the stream ends in REPEATS copies of one span."""

    def __init__(self, min_period: int = MIN_PERIOD, max_period: int = MAX_PERIOD, repeats: int = REPEATS) -> None:
        self.min_period, self.max_period, self.repeats = min_period, max_period, repeats
        self._count = 0
        self._seen: dict[int, deque[int]] = {}  # token -> its recent positions
        self._run: dict[int, tuple[int, int]] = {}  # period -> (last position matched, run length)
        self.detected_at: int | None = None  # tokens fed when the loop was found

    def feed(self, token: int) -> bool:
        """Record a token; True when the last `repeats × period` tokens are one span repeated."""
        position = self._count
        self._count += 1
        positions = self._seen.setdefault(token, deque())
        while positions and position - positions[0] > self.max_period:
            positions.popleft()
        found = False
        for earlier in positions:
            period = position - earlier
            if period < self.min_period:
                continue
            last, run = self._run.get(period, (-2, 0))
            run = run + 1 if last == position - 1 else 1
            self._run[period] = (position, run)
            if run >= (self.repeats - 1) * period:
                found = True
        positions.append(position)
        if len(self._run) > 4 * self.max_period:  # drop runs that are already broken
            self._run = {p: v for p, v in self._run.items() if v[0] == position}
        if found and self.detected_at is None:
            self.detected_at = self._count
        return found
