"""Reasoning controls for one reply: a thinking budget, "answer now", and the loop guard's mode.

When the thinking must end, the engine does not mask logits mid-word as other runtimes do: it lets
the model reach a sentence or line end (a small grace), then feeds TRANSITION and the closing tag
into the context as if the model had written them, and samples the answer from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from localr1.budget import LoopMode, check_loop_mode, format_budget, parse_budget
from localr1.engine.events import ThinkingEnd
from localr1.engine.reasoning import THINK_CLOSE
from localr1.errors import ConfigError

__all__ = ["LoopMode", "ThinkingControl", "ThinkingEnd", "format_budget", "parse_budget"]

# Fed to the model, never shown: the thinking so far is kept, this is not part of it.
TRANSITION = "\n\nI have to give my answer now.\n"
FORCED_CLOSE = TRANSITION + THINK_CLOSE + "\n\n"
# Appended after the opener when the budget is 0: the reply starts in the answer.
CLOSED_THINKING = "\n" + THINK_CLOSE + "\n\n"

SENTENCE_GRACE = 16  # tokens past the budget spent looking for a sentence or line end
GRACE_TOKENS = 24  # then a word end; at this many tokens past the budget the thinking ends regardless

_SENTENCE_END = re.compile(r"(?:[.!?…。！？]['\"”’)\]*_]*|:\n|\n)[ \t]*\Z")


@dataclass(frozen=True)
class ThinkingControl:
    """Per-reply controls: a budget in tokens or seconds (None: unlimited) and the loop guard mode."""

    budget_tokens: int | None = None
    budget_seconds: float | None = None
    loop_guard: LoopMode = "act"

    def __post_init__(self) -> None:
        check_loop_mode(self.loop_guard)
        if self.budget_tokens is not None and self.budget_tokens < 0:
            raise ConfigError(f"a thinking budget of {self.budget_tokens} tokens is negative (use 0 or more)")
        if self.budget_seconds is not None and not self.budget_seconds >= 0:
            raise ConfigError(f"a thinking budget of {self.budget_seconds} seconds is negative (use 0 or more)")

    @property
    def answer_directly(self) -> bool:
        """Budget 0: the thinking is closed in the prompt itself."""
        return self.budget_tokens == 0 or self.budget_seconds == 0

    def over_budget(self, thinking_tokens: int, thinking_seconds: float) -> bool:
        """True once the thinking has used its budget."""
        if self.budget_tokens is not None and thinking_tokens >= self.budget_tokens:
            return True
        return self.budget_seconds is not None and thinking_seconds >= self.budget_seconds

    def describe_budget(self) -> str | None:
        """'2000 tokens', '90 s', or None when unlimited."""
        if self.budget_tokens is not None:
            return f"{self.budget_tokens} tokens"
        if self.budget_seconds is not None:
            return f"{self.budget_seconds:g} s"
        return None


def ends_sentence(text: str) -> bool:
    """True when text ends a sentence or a line (closing quotes and spaces after it allowed)."""
    return bool(_SENTENCE_END.search(text[-16:]))


def ends_word(text: str) -> bool:
    """True when text ends between words: after a space, punctuation, or a CJK character."""
    if not text:
        return True
    last = text[-1]
    return last.isspace() or (not last.isalnum() and last not in "'’-_") or _is_cjk(last)


def starts_word(piece: str) -> bool:
    """True when a token's text begins a new word (it starts with whitespace)."""
    return bool(piece) and piece[0].isspace()


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return 0x3000 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF


class BudgetCut:
    """Decides, token by token past the budget, where the thinking may end (never mid-word)."""

    def __init__(self) -> None:
        self.past_budget = 0

    def before(self, tail: str, piece: str) -> bool:
        """Past the sentence grace: end before this token when the text so far ends a word or it starts one."""
        if self.past_budget < SENTENCE_GRACE:
            return False
        return ends_word(tail) or starts_word(piece) or self.past_budget >= GRACE_TOKENS

    def after(self, tail: str) -> bool:
        """Counts a token past the budget; end after it when the text now ends a sentence or a line."""
        self.past_budget += 1
        return ends_sentence(tail) or (self.past_budget >= GRACE_TOKENS and ends_word(tail))
