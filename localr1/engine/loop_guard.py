"""Degenerate-repetition detection over generated token ids (pure Python and numpy, no llama_cpp).

Two rules, over tokens (not text lines, so that multi-line loops count like one-line ones). Each
token is compared by its text without surrounding whitespace, and whitespace-only tokens are left
out (`token_key`): a loop whose copies are joined once by " " and once by a blank line is one loop.
- repeat: the stream ends with a span of `min_period`..`max_period` tokens repeated `repeats`
  times back to back (and at least `min_span` tokens in all). Per token this costs one numpy
  comparison of the last `max_period` tokens: for every period p a counter of how many tokens
  in a row equalled the token p back. A loop of period p is seen the moment its third copy ends.
  Data and markup repeat legitimately (a row of zeros, `0x00, 0x00, …`, `<col></col> <col></col>`),
  prose does not: a unit with fewer than `min_words` distinct words (alphabetic tokens of two
  letters or more, marked in the key's low bit) must span `data_span` tokens before it counts.
- diversity: over the last `window` tokens, fewer than `min_distinct` of the n-grams are distinct
  (a near-loop whose copies vary a little). Kept with a rolling n-gram count: O(1) per token.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

LoopRule = Literal["repeat", "diversity"]


@dataclass(frozen=True)
class LoopHit:
    """A detected loop: which rule, its period (0 for diversity), where it began and when it was seen."""

    rule: LoopRule
    period: int
    start: int  # index of the loop's first token among the tokens fed
    seen_at: int  # tokens fed when it was detected


@dataclass(frozen=True)
class LoopGuardConfig:
    """Thresholds; the defaults are the ones measured in benchmarks/loop_guard.py."""

    min_period: int = 4
    max_period: int = 256
    repeats: int = 3
    min_span: int = 24  # a 4-token unit must repeat 6 times
    min_words: int = 3
    data_span: int = 96
    window: int = 512
    ngram: int = 4
    min_distinct: float = 0.25


class LoopGuard:
    """Feed token keys one by one; `feed` returns a LoopHit once the stream degenerates."""

    def __init__(self, config: LoopGuardConfig | None = None) -> None:
        self.config = c = config or LoopGuardConfig()
        self._periods = np.arange(1, c.max_period + 1)
        # For period p (index p-1): tokens in a row equal to the one p back needed to fire.
        need = np.maximum((c.repeats - 1) * self._periods, c.min_span - self._periods)
        need[: c.min_period - 1] = np.iinfo(np.int64).max  # shorter units: the diversity rule's job
        self._need = need
        self.reset()

    def reset(self) -> None:
        """Forget everything fed so far (a new reply, or a new channel)."""
        size = self.config.max_period
        self._history = np.full(4 * size, -1, dtype=np.int64)  # newest last, from index _end - 1 back
        self._end = size  # the first `size` slots stay -1: "before the stream"
        self._run = np.zeros(size, dtype=np.int64)
        self._count = 0
        self._grams: Counter[tuple[int, ...]] = Counter()
        self._recent: deque[int] = deque(maxlen=self.config.ngram)
        self._gram_log: deque[tuple[int, ...]] = deque()

    @property
    def tokens_seen(self) -> int:
        """Tokens fed since the last reset."""
        return self._count

    def feed(self, token: int) -> LoopHit | None:
        """Add one token; a LoopHit when a loop ends here, else None."""
        hit = self._feed_repeat(token)
        diverse = self._feed_diversity(token)
        self._count += 1
        return hit or diverse

    def _feed_repeat(self, token: int) -> LoopHit | None:
        size = self.config.max_period
        if self._end == len(self._history):  # slide the last `size` tokens to the front
            self._history[:size] = self._history[-size:]
            self._end = size
        back = self._history[self._end - size: self._end][::-1]  # back[p-1] = the token p back
        equal = back == token
        self._run += 1
        self._run *= equal
        self._history[self._end] = token
        self._end += 1
        ready = np.flatnonzero(self._run >= self._need)
        if ready.size == 0:
            return None
        period = int(ready[0]) + 1
        span = int(self._run[period - 1]) + period
        # The run may be made of a shorter unit (a row of dashes): leave that to the diversity rule.
        if np.any(self._run[: self.config.min_period - 1] + np.arange(1, self.config.min_period) >= span):
            return None
        if span < self.config.data_span:
            unit = self._history[self._end - period: self._end]
            if np.unique(unit[(unit & 1) == 1]).size < self.config.min_words:
                return None
        return LoopHit("repeat", period, self._count + 1 - span, self._count + 1)

    def _feed_diversity(self, token: int) -> LoopHit | None:
        c = self.config
        self._recent.append(token)
        if len(self._recent) < c.ngram:
            return None
        gram = tuple(self._recent)
        self._grams[gram] += 1
        self._gram_log.append(gram)
        if len(self._gram_log) > c.window:
            old = self._gram_log.popleft()
            left = self._grams[old] - 1
            if left:
                self._grams[old] = left
            else:
                del self._grams[old]
        if len(self._gram_log) < c.window or len(self._grams) >= c.min_distinct * c.window:
            return None
        return LoopHit("diversity", 0, self._count + 1 - c.window - c.ngram + 1, self._count + 1)


def token_key(piece: bytes) -> int | None:
    """What the guard compares for a token: its text without surrounding whitespace, the low bit set for a
    word (two letters or more); None for whitespace only."""
    stripped = piece.strip()
    if not stripped:
        return None
    text = stripped.decode("utf-8", "replace")
    word = len(text) >= 2 and text.isalpha()
    return (hash(stripped) & 0x3FFF_FFFF_FFFF_FFFF) << 1 | word  # never negative: -1 marks "nothing"


def scan(keys: list[int], config: LoopGuardConfig | None = None) -> LoopHit | None:
    """The first loop in a whole list of keys, or None."""
    guard = LoopGuard(config)
    for key in keys:
        hit = guard.feed(key)
        if hit is not None:
            return hit
    return None
