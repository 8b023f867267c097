"""Generated tokens in, typed deltas out: whole pieces, UTF-8 split across tokens, thinking apart from answer."""

from __future__ import annotations

from localr1.engine.events import AnswerDelta, ThinkingDelta
from localr1.engine.reasoning import ReasoningParser, Segment
from localr1.engine.vocab import TextDecoder, Vocab

Delta = ThinkingDelta | AnswerDelta


class ReplyAssembler:
    """Decodes a reply token by token and keeps the full thinking and answer texts."""

    def __init__(self, vocab: Vocab, start_in_thinking: bool) -> None:
        self._text = TextDecoder(vocab)
        self._parser = ReasoningParser(start_in_thinking=start_in_thinking)
        self._thinking: list[str] = []
        self._answer: list[str] = []
        self.tail = ""  # the last characters decoded, tags included: where a forced close may cut

    def feed(self, token: int) -> list[Delta]:
        """Deltas that are certain once this token is added."""
        text = self._text.feed(token)
        if text:
            self.tail = (self.tail + text)[-32:]
        return self._route(self._parser.feed(text))

    @property
    def mid_character(self) -> bool:
        """True while a character split across tokens is incomplete (never cut there)."""
        return self._text.mid_character

    def close_thinking(self) -> list[Delta]:
        """The engine ended the thinking: keep it as it is, route all later text to the answer."""
        return self._route(self._parser.close_thinking())

    def finish(self) -> list[Delta]:
        """Deltas held back until the end (a split character, a partial tag)."""
        return self._route(self._parser.feed(self._text.finish()) + self._parser.finish())

    @property
    def in_thinking(self) -> bool:
        """True while the reply has not closed its thinking block."""
        return self._parser.channel == "thinking"

    @property
    def thinking(self) -> str:
        """All reasoning text so far."""
        return "".join(self._thinking)

    @property
    def answer(self) -> str:
        """All answer text so far."""
        return "".join(self._answer)

    def _route(self, segments: list[Segment]) -> list[Delta]:
        out: list[Delta] = []
        for segment in segments:
            if segment.channel == "thinking":
                self._thinking.append(segment.text)
                out.append(ThinkingDelta(segment.text))
            else:
                self._answer.append(segment.text)
                out.append(AnswerDelta(segment.text))
        return out
