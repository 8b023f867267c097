"""Degenerate-repetition detection over generated token ids (pure Python and numpy, no llama_cpp).

Three rules, over tokens (not text lines, so that multi-line loops count like one-line ones). Each
token is compared by its text without surrounding whitespace, and whitespace-only tokens are left
out (`token_key`): a loop whose copies are joined once by " " and once by a blank line is one loop.
- repeat: the stream ends with a span of `min_period`..`max_period` tokens repeated `repeats`
  times back to back (and at least `min_span` tokens in all). Per token this costs one numpy
  comparison of the last `max_period` tokens: for every period p a counter of how many tokens
  in a row equalled the token p back. A loop of period p is seen the moment its third copy ends.
- near: for a period p of `near_min_period` or more, at least `near_ratio` of the last
  max((`repeats` - 1) × p, `near_span` - p) tokens equal the token p back, and at most
  `near_mismatches` per copy differ (a loop whose copies differ in a counter or a word; records and
  tests differ in more, and a short unit must repeat more often: checklists repeat a few times).
  A running match count per period, updated from two strided slices of the history (the comparison
  entering the window and the one leaving it), keeps this at a few numpy operations per token.
- Data and markup repeat legitimately (a row of zeros, `0x00, 0x00, …`, `<col></col> <col></col>`),
  prose does not: a unit with fewer than `min_words` distinct words (alphabetic tokens of two
  letters or more, marked in the key's low bit) must span `data_span` tokens before either rule
  counts it (`thinking_data_span` in the thinking channel: `feed(key, thinking=True)`). Every
  period ready at a token is checked, so the rules are monotone in their thresholds.
- diversity: over the last `window` tokens, fewer than `min_distinct` of the n-grams are distinct
  (a short unit repeated, or a loop that drifts). Kept with a rolling n-gram count: O(1) per token.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

LoopRule = Literal["repeat", "near", "diversity"]


@dataclass(frozen=True)
class LoopHit:
    """A detected loop: which rule, its period (0 for diversity), where it began and when it was seen."""

    rule: LoopRule
    period: int
    start: int  # index of the loop's first token among the tokens fed
    seen_at: int  # tokens fed when it was detected


@dataclass(frozen=True)
class LoopGuardConfig:
    """Thresholds; the defaults are the ones measured in benchmarks/loop_guard.py (see benchmarks/RESULTS.md)."""

    min_period: int = 4
    max_period: int = 256
    repeats: int = 3
    min_span: int = 24  # a 4-token unit must repeat 6 times
    min_words: int = 3
    data_span: int = 80
    thinking_data_span: int = 80
    near_min_period: int = 8
    near_ratio: float = 0.85
    near_mismatches: int = 1  # and at most this many tokens per copy differ
    near_span: int = 64  # over at least this many tokens
    window: int = 512
    ngram: int = 4
    min_distinct: float = 0.25


class LoopGuard:
    """Feed token keys one by one; `feed` returns a LoopHit once the stream degenerates."""

    def __init__(self, config: LoopGuardConfig | None = None) -> None:
        self.config = c = config or LoopGuardConfig()
        periods = np.arange(1, c.max_period + 1)
        # For period p (index p-1): tokens in a row equal to the one p back needed to fire.
        need = np.maximum((c.repeats - 1) * periods, c.min_span - periods)
        never = np.iinfo(np.int64).max
        need[: c.min_period - 1] = never  # shorter units: the diversity rule's job
        # The near rule looks at the last W_p tokens: (repeats - 1) copies, and at least near_span - p tokens
        # (as min_span for the exact rule: a short unit needs more copies). Matches needed there:
        window = np.maximum((c.repeats - 1) * periods, c.near_span - periods)
        self._near_window = window
        copies = -(-window // periods)
        near_need = np.maximum(np.ceil(c.near_ratio * window - 1e-9).astype(np.int64),
                               window - c.near_mismatches * copies)
        near_need[: max(c.near_min_period, c.min_period) - 1] = never
        # Periods below `self._split` have the longer window: the comparison leaving it is the token
        # near_span - p back against the one near_span back; the others compare (r-1)p and rp back.
        self._split = int(np.count_nonzero(window > (c.repeats - 1) * periods))
        self._keep = max(c.repeats * c.max_period, c.near_span) + 1  # tokens of history the rules look back over
        self._leaving = np.zeros(c.max_period, dtype=bool)
        self._needs = np.stack([need, near_need])
        self.reset()

    def reset(self) -> None:
        """Forget everything fed so far (a new reply, or a new channel)."""
        size, keep = self.config.max_period, self._keep
        # Newest last, at _end - 1. The slots before the stream hold distinct negative values: equal to nothing.
        self._history = -np.arange(1, 2 * keep + 1, dtype=np.int64)
        self._end = keep
        self._state = np.zeros((2, size), dtype=np.int64)
        self._run = self._state[0]  # per period p: tokens in a row equal to the one p back
        self._near = self._state[1]  # per period p: matches among the last W_p tokens
        self._count = 0
        self._grams: Counter[tuple[int, ...]] = Counter()
        self._recent: deque[int] = deque(maxlen=self.config.ngram)
        self._gram_log: deque[tuple[int, ...]] = deque()

    @property
    def tokens_seen(self) -> int:
        """Tokens fed since the last reset."""
        return self._count

    def feed(self, token: int, *, thinking: bool = False) -> LoopHit | None:
        """Add one token (`thinking`: it belongs to the reasoning channel); a LoopHit when a loop ends here."""
        hit = self._feed_repeat(token, thinking)
        diverse = self._feed_diversity(token)
        self._count += 1
        return hit or diverse

    def _feed_repeat(self, token: int, thinking: bool) -> LoopHit | None:
        c = self.config
        size, end, r = c.max_period, self._end, c.repeats
        history = self._history
        if end == len(history):  # slide the last `keep` tokens to the front
            history[: self._keep] = history[-self._keep:]
            self._end = end = self._keep
        equal = history[end - size: end][::-1] == token  # equal[p-1]: the token p back is this one
        run, near, leaving = self._run, self._near, self._leaving
        run += 1
        run *= equal
        # The comparison leaving each period's near window (see __init__).
        k, span = self._split, c.near_span
        np.equal(history[end - span + 1: end - span + k + 1], history[end - span], out=leaving[:k])
        np.equal(history[end - (r - 1) * (k + 1): end - (r - 1) * size - 1: -(r - 1)],
                 history[end - r * (k + 1): end - r * size - 1: -r], out=leaving[k:])
        near += equal
        near -= leaving
        history[end] = token
        self._end = end + 1
        hot = self._state >= self._needs  # rows: the exact rule's runs, the near rule's matches
        if not hot.any():
            return None
        exact, close = hot
        ready = np.flatnonzero(exact | close)
        spans = ready + 1 + np.maximum(np.where(exact[ready], self._run[ready], 0),
                                       np.where(close[ready], self._near_window[ready], 0))
        spans = np.minimum(spans, self._count + 1)
        # A run made of a shorter unit (a row of dashes, `0, 0, 0`) is left to the diversity rule.
        shorter = int(np.max(self._run[: c.min_period - 1] + np.arange(1, c.min_period), initial=0))
        longer = spans > shorter
        ready, spans = ready[longer], spans[longer]
        if ready.size == 0:
            return None
        # A data unit (few distinct words) must span more; a longer unit holds at least the words of a shorter.
        long_enough = np.flatnonzero(spans >= (c.thinking_data_span if thinking else c.data_span))
        first = int(long_enough[0]) if long_enough.size else ready.size
        if first > 0 and self._words(int(ready[first - 1]) + 1) >= c.min_words:
            first = next(i for i in range(first) if self._words(int(ready[i]) + 1) >= c.min_words)
        elif first == ready.size:
            return None
        period, span = int(ready[first]) + 1, int(spans[first])
        rule: LoopRule = "repeat" if exact[period - 1] else "near"
        return LoopHit(rule, period, self._count + 1 - span, self._count + 1)

    def _words(self, period: int) -> int:
        """Distinct words among the last `period` tokens."""
        unit = self._history[self._end - period: self._end]
        return int(np.unique(unit[(unit & 1) == 1]).size)

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


def scan(keys: list[int], config: LoopGuardConfig | None = None, *, thinking: bool = False) -> LoopHit | None:
    """The first loop in a whole list of keys, or None."""
    guard = LoopGuard(config)
    for key in keys:
        hit = guard.feed(key, thinking=thinking)
        if hit is not None:
            return hit
    return None
