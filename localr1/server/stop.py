"""OpenAI's `stop` sequences, applied to the answer as it streams (the reasoning is never cut by them)."""

from __future__ import annotations

from typing import Any

MAX_STOPS = 4  # as OpenAI's API


def parse_stop(value: Any) -> tuple[str, ...] | str:
    """The stop strings of a request's `stop` (a string or a list of up to 4; empty strings stop nothing, alone or
    in a list); a str result says what is wrong."""
    if value is None or value in ("", []):
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or len(stops) > MAX_STOPS or not all(isinstance(s, str) for s in stops):
        return f"'stop' must be a string or a list of up to {MAX_STOPS} strings"
    return tuple(dict.fromkeys(s for s in stops if s))  # an empty string stops nothing, alone or in a list


class StopMatcher:
    """Cuts a streamed text before the first stop string; holds back a tail that may be the start of one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.stopped = False
        self._held = ""

    def feed(self, text: str) -> str:
        """The part of the text that is certain to come before any stop string (empty once one matched)."""
        if self.stopped or not self.stops:
            return "" if self.stopped else text
        pending = self._held + text
        match = self._first_match(pending)
        partial = self._partial_start(pending)
        if match is not None and (partial is None or match <= partial):
            self.stopped, self._held = True, ""
            return pending[:match]
        keep = partial if partial is not None else len(pending)  # a stop that starts earlier may still complete
        self._held = pending[keep:]
        return pending[:keep]

    def flush(self) -> str:
        """What was held back, once the answer ended (cut if a stop string is complete in it)."""
        held, self._held = self._held, ""
        if self.stopped:
            return ""
        match = self._first_match(held)
        if match is not None:
            self.stopped = True
            return held[:match]
        return held

    def _first_match(self, text: str) -> int | None:
        return min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=None)

    def _partial_start(self, text: str) -> int | None:
        """Where the earliest end of `text` that begins some stop string (without completing it) starts."""
        longest = max(len(s) for s in self.stops) - 1
        for start in range(max(0, len(text) - longest), len(text)):
            tail = text[start:]
            if any(len(tail) < len(s) and s.startswith(tail) for s in self.stops):
                return start
        return None


def cut_answer(answer: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """A whole answer cut before its first stop string, and whether one was there."""
    matcher = StopMatcher(stops)
    kept = matcher.feed(answer)
    kept += matcher.flush()
    return kept, matcher.stopped
