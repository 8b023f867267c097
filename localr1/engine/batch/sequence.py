"""The state of one sequence in a batch: its tokens to evaluate, sampler chain, reply assembly and limits."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from localr1.engine.batch.loop_guard import LoopGuard, LoopGuardMode
from localr1.engine.batch.sampler import SamplerChain
from localr1.engine.engine import PreparedPrompt
from localr1.engine.events import Finished, GenerationStats, LengthLimit, StopReason
from localr1.engine.params import SamplingParams
from localr1.engine.reply import Delta, ReplyAssembler
from localr1.engine.vocab import Vocab


@dataclass(frozen=True)
class ReasoningControls:
    """Per-request reasoning limits: a thinking budget in tokens (None: none) and the loop guard's mode."""

    thinking_budget: int | None = None
    loop_guard: LoopGuardMode = "act"


@dataclass(frozen=True)
class SequenceRequest:
    """A prepared prompt to run as one sequence, with its sampling and reasoning controls."""

    request_id: str
    prompt: PreparedPrompt
    sampling: SamplingParams
    controls: ReasoningControls = field(default_factory=ReasoningControls)


@dataclass(frozen=True)
class SequenceFinished(Finished):
    """`Finished`, plus what the batch did to this sequence."""

    loop_detected_at: int | None = None  # generated tokens when the loop guard fired
    thinking_forced_closed: bool = False  # the budget or the loop guard ended the thinking
    peak_batch: int = 1  # most sequences decoded in one step alongside (and including) this one


class Sequence:
    """One running request; the batch engine drives it, one decode step at a time."""

    def __init__(self, request: SequenceRequest, slot: int, vocab: Vocab, close_thinking: list[int]) -> None:
        self.request = request
        self.slot = slot
        self.sampling = request.sampling
        self.controls = request.controls
        self.chain = SamplerChain(request.sampling)
        opens = request.prompt.rendered.opens_thinking
        self.reply = ReplyAssembler(vocab, start_in_thinking=opens)
        self.guard = LoopGuard() if self.controls.loop_guard != "off" else None
        self._close_thinking = close_thinking
        self.pending: list[int] = list(request.prompt.tokens)  # tokens to evaluate, in order
        self.offset = 0  # how many of `pending` are evaluated
        self.pos = 0  # tokens in this sequence's KV cache
        self.generated = 0
        self.thinking_tokens = 0
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.last_token_at = self.started
        self.loop_detected_at: int | None = None
        self.forced_close = False
        self.peak_batch = 1
        self.cancelled = False
        self.pending_deltas: list[Delta] = []
        if opens and self.controls.thinking_budget == 0:
            self._force_close()  # answer directly: the thinking closes before the first generated token

    @property
    def reading_prompt(self) -> bool:
        """True until the prompt's last token has been evaluated."""
        return self.first_token_at is None

    def remaining(self) -> int:
        """Tokens still to evaluate before the next sample."""
        return len(self.pending) - self.offset

    def take(self, budget: int) -> tuple[list[int], bool]:
        """Up to `budget` tokens to evaluate now, and whether they end the pending run (logits wanted)."""
        end = min(len(self.pending), self.offset + budget)
        chunk = self.pending[self.offset:end]
        self.offset = end
        return chunk, end == len(self.pending)

    def _force_close(self) -> None:
        """Queue the closing tag after whatever is pending, and let the reply parser see it too."""
        self.forced_close = True
        self.pending.extend(self._close_thinking)
        for token in self._close_thinking:
            self.pending_deltas.extend(self.reply.feed(token))

    def accept(self, token: int, now: float, is_end: bool, context_size: int
               ) -> tuple[list[Delta], StopReason | None, LengthLimit | None]:
        """Take a sampled token: its deltas, and why the sequence stops now (None: it goes on)."""
        if self.first_token_at is None:
            self.first_token_at = now
        deltas, self.pending_deltas = self.pending_deltas, []
        if is_end:
            return deltas, "eos", None
        self.generated += 1
        self.last_token_at = now
        thinking = self.reply.in_thinking
        if thinking:
            self.thinking_tokens += 1
        deltas.extend(self.reply.feed(token))
        self.pending, self.offset = [token], 0
        if self.guard is not None and self.guard.feed(token):
            if self.loop_detected_at is None:
                self.loop_detected_at = self.generated
            if self.controls.loop_guard != "act":
                self.guard = None  # "warn": noted once
            elif thinking and self.reply.in_thinking and not self.forced_close:
                self._force_close()  # a loop while thinking ends the thinking; the answer is watched afresh
                self.guard = LoopGuard()
                deltas.extend(self.pending_deltas)
                self.pending_deltas = []
            else:
                return deltas, "repetition", None
        budget = self.controls.thinking_budget
        if budget is not None and not self.forced_close and self.reply.in_thinking and self.thinking_tokens >= budget:
            self._force_close()
            deltas.extend(self.pending_deltas)
            self.pending_deltas = []
        if self.generated >= self.sampling.max_tokens:
            return deltas, "length", "max_tokens"
        if self.pos + len(self.pending) >= context_size:
            return deltas, "length", "context"
        return deltas, None, None

    def finish(self, stop: StopReason, limit: LengthLimit | None, error: str | None = None
               ) -> tuple[list[Delta], SequenceFinished]:
        """Flush the reply and build its final event."""
        deltas = self.pending_deltas + self.reply.finish()
        self.pending_deltas = []
        self.chain.close()
        first = self.first_token_at
        decode_s = self.last_token_at - first if first is not None else 0.0
        stats = GenerationStats(
            prompt_tokens=len(self.request.prompt.tokens),
            prompt_eval_tokens=min(self.pos, len(self.request.prompt.tokens)),
            cached_tokens=0,
            generated_tokens=self.generated,
            time_to_first_token_s=(first or time.perf_counter()) - self.started,
            decode_s=decode_s,
            decode_tokens_per_s=(self.generated - 1) / decode_s if self.generated > 1 and decode_s > 0 else 0.0,
            stop_reason=stop,
            length_limit=limit,
            thinking_cut_off=stop == "length" and self.reply.in_thinking,
        )
        final = SequenceFinished(self.reply.thinking, self.reply.answer, stats, error,
                                 loop_detected_at=self.loop_detected_at, thinking_forced_closed=self.forced_close,
                                 peak_batch=self.peak_batch)
        return deltas, final
