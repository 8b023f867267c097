"""Typed events streamed by the engine; the CLI and TUI consume only these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StopReason = Literal["eos", "length", "cancelled", "error", "repetition"]
LengthLimit = Literal["max_tokens", "context"]
ThinkingEnd = Literal["model", "budget", "answer_now", "loop"]


@dataclass(frozen=True)
class ThinkingDelta:
    """A piece of the model's reasoning."""

    text: str


@dataclass(frozen=True)
class AnswerDelta:
    """A piece of the final answer."""

    text: str


@dataclass(frozen=True)
class ContextTrimmed:
    """Oldest turns were left out so the conversation fits in the context window."""

    dropped_messages: int
    prompt_tokens: int
    context_size: int


@dataclass(frozen=True)
class ThinkingClosed:
    """The engine ended the thinking (budget, answer-now or a loop); the answer follows."""

    reason: ThinkingEnd
    thinking_tokens: int


@dataclass(frozen=True)
class LoopDetected:
    """The loop guard saw degenerate repetition after `after_tokens` generated tokens."""

    after_tokens: int
    period: int  # tokens per repeat; 0 when too few distinct phrases were the sign
    in_thinking: bool
    acted: bool  # False in "warn" mode: only reported


@dataclass(frozen=True)
class GenerationStats:
    """Measured facts about one generation."""

    prompt_tokens: int
    prompt_eval_tokens: int
    cached_tokens: int
    generated_tokens: int
    time_to_first_token_s: float
    decode_s: float
    decode_tokens_per_s: float
    stop_reason: StopReason
    # For stop_reason "length": which limit ended the reply (the max_tokens budget or a full context).
    length_limit: LengthLimit | None = None
    # The reply hit that limit while still thinking, so it has no answer at all.
    thinking_cut_off: bool = False
    # Tokens the model generated while thinking, and what ended the thinking (None: it never did,
    # or the model does not think). "budget" too when the budget was 0 and the prompt closed it.
    thinking_tokens: int = 0
    thinking_ended_by: ThinkingEnd | None = None
    # Generated tokens when the loop guard fired (in any mode), else None.
    loop_detected_after: int | None = None

    @property
    def truncated(self) -> bool:
        """True when a token limit, not the model, ended the reply."""
        return self.stop_reason == "length"


@dataclass(frozen=True)
class Finished:
    """The last event of every generation: the full texts and the stats."""

    thinking: str
    answer: str
    stats: GenerationStats
    error: str | None = None


@dataclass(frozen=True)
class SlowDecoding:
    """The first seconds of decoding ran far below the planner's steady-state prediction (sent once a turn)."""

    measured_tps: float
    predicted_tps: float


Event = ThinkingDelta | AnswerDelta | ContextTrimmed | ThinkingClosed | LoopDetected | SlowDecoding | Finished
