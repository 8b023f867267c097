"""Compare the first seconds of decoding with the planner's prediction: far below it, the weights are not
resident yet (a cold page cache, memory pressure) or another process takes the cores."""

from __future__ import annotations

from localr1.engine.events import SlowDecoding
from localr1.engine.params import SpeedPrediction

WINDOW_S = 2.0  # decode this long before judging (the first tokens fault the weights in)...
ENOUGH_TOKENS = 64  # ...or this many tokens, whichever comes first
MIN_TOKENS = 8
SLOW_RATIO = 0.5  # under half the prediction is "far below"


class DecodeWatch:
    """Fed each token's time; answers a SlowDecoding once, when the first window ran far below the prediction."""

    def __init__(self, prediction: SpeedPrediction | None, *, depth: int, context: int,
                 window_s: float = WINDOW_S, min_tokens: int = MIN_TOKENS, ratio: float = SLOW_RATIO) -> None:
        self.expected = prediction.at_depth(depth, context) if prediction is not None else None
        self.window_s, self.min_tokens, self.ratio = window_s, min_tokens, ratio
        self._first: float | None = None
        self._done = self.expected is None

    def token(self, now: float, generated: int) -> SlowDecoding | None:
        """Note a token (the `generated`-th of the reply) at time `now`."""
        if self._done:
            return None
        if self._first is None:
            self._first = now  # its time includes the prompt: the window starts here
            return None
        elapsed, timed = now - self._first, generated - 1
        if timed < self.min_tokens or (elapsed < self.window_s and timed < ENOUGH_TOKENS) or elapsed <= 0:
            return None
        self._done = True
        measured = timed / elapsed
        assert self.expected is not None
        return SlowDecoding(measured, self.expected) if measured < self.ratio * self.expected else None
