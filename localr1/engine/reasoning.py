"""Incremental split of a model's output into thinking and answer text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Channel = Literal["thinking", "answer"]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class Segment:
    """A run of text on one channel."""

    channel: Channel
    text: str


def prompt_opens_thinking(prompt: str) -> bool:
    """True when the rendered prompt already ends inside a `<think>` block."""
    return prompt.rstrip().endswith(THINK_OPEN)


class ReasoningParser:
    """Feed text chunks in any split; get thinking and answer segments out.

    Tags split across chunks are held back until they can be decided. Leading whitespace of
    each block is dropped, so `<think>\\n\\n</think>\\n\\nAnswer` gives empty thinking and "Answer".
    """

    def __init__(self, start_in_thinking: bool = False) -> None:
        self.channel: Channel = "thinking" if start_in_thinking else "answer"
        self._pending = ""
        # At the start of a block: skip whitespace, and (before any answer) accept an opener.
        self._at_block_start = True
        self._may_open = True
        self._may_reclose = False  # at the answer's start, a repeated closing tag is swallowed
        self.saw_close = False

    def _emit(self, out: list[Segment], text: str) -> None:
        if self._at_block_start:
            text = text.lstrip()
            if not text:
                return
            self._at_block_start = False
            self._may_open = False
            self._may_reclose = False
        if out and out[-1].channel == self.channel:
            out[-1] = Segment(self.channel, out[-1].text + text)
        else:
            out.append(Segment(self.channel, text))

    def feed(self, chunk: str) -> list[Segment]:
        """Consume a chunk and return the segments that are now certain."""
        out: list[Segment] = []
        text = self._pending + chunk
        self._pending = ""
        while text:
            if self._may_open:
                # An opener only counts before any other text (a repeated one is swallowed).
                stripped = text.lstrip()
                if not stripped:
                    break
                if stripped.startswith(THINK_OPEN):
                    text = stripped[len(THINK_OPEN):]
                    self.channel = "thinking"
                    self._at_block_start = True
                    self._may_open = False
                    continue
                if THINK_OPEN.startswith(stripped):
                    self._pending = text
                    break
                self._may_open = False
            if self.channel == "answer" and self._may_reclose:
                # After a close (the model's or a forced one) a second `</think>` is never answer text.
                stripped = text.lstrip()
                if not stripped:
                    break
                if stripped.startswith(THINK_CLOSE):
                    text = stripped[len(THINK_CLOSE):]
                    self._may_reclose = False
                    continue
                if THINK_CLOSE.startswith(stripped):
                    self._pending = text
                    break
                self._may_reclose = False
            if self.channel == "answer":
                self._emit(out, text)
                break
            index = text.find(THINK_CLOSE)
            if index >= 0:
                self._emit(out, text[:index])
                text = text[index + len(THINK_CLOSE):]
                self._enter_answer()
                continue
            keep = _partial_suffix(text, THINK_CLOSE)
            self._emit(out, text[: len(text) - keep])
            self._pending = text[len(text) - keep:]
            break
        return out

    def _enter_answer(self) -> None:
        self.channel = "answer"
        self.saw_close = True
        self._at_block_start = True
        self._may_open = False
        self._may_reclose = True

    def close_thinking(self) -> list[Segment]:
        """End the thinking now (a budget, answer-now): what was held back stays thinking unless it
        is the start of a closing tag; everything fed later is answer."""
        out: list[Segment] = []
        if self.channel != "thinking":
            return out
        pending, self._pending = self._pending, ""
        if pending and not pending.startswith("</"):
            self._emit(out, pending)
        self._enter_answer()
        return out

    def finish(self) -> list[Segment]:
        """Flush what was held back at the end of the stream."""
        out: list[Segment] = []
        if self._pending:
            pending, self._pending = self._pending, ""
            self._may_open = False
            self._emit(out, pending)
        return out


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of text that is a proper prefix of tag."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def split_reasoning(text: str, start_in_thinking: bool = False) -> tuple[str, str]:
    """Parse a whole output at once; returns (thinking, answer)."""
    parser = ReasoningParser(start_in_thinking)
    parts = parser.feed(text) + parser.finish()
    thinking = "".join(s.text for s in parts if s.channel == "thinking")
    answer = "".join(s.text for s in parts if s.channel == "answer")
    return thinking, answer
