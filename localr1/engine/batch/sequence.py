"""The state of one sequence in a batch: its tokens to evaluate, sampler chain, reasoning controls and limits.

The thinking budget, answer-now and the loop guard are the single engine's (ReasoningController): a forced
close is queued as tokens to evaluate in this sequence's next step, exactly where `run` would feed it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from localr1.engine.batch.sampler import SamplerChain
from localr1.engine.engine import PreparedPrompt, close_thinking_in_prompt
from localr1.engine.events import Event, Finished, GenerationStats, LengthLimit, StopReason
from localr1.engine.params import SamplingParams
from localr1.engine.reasoning_controller import ReasoningController
from localr1.engine.thinking import CLOSED_THINKING, ThinkingControl
from localr1.engine.vocab import Vocab


@dataclass(frozen=True)
class SequenceRequest:
    """A prepared prompt to run as one sequence, with its sampling and reasoning controls."""

    request_id: str
    prompt: PreparedPrompt
    sampling: SamplingParams
    controls: ThinkingControl = field(default_factory=ThinkingControl)


@dataclass(frozen=True)
class SequenceFinished(Finished):
    """`Finished`, plus what the batch did to this sequence."""

    loop_detected_at: int | None = None  # generated tokens when the loop guard fired
    thinking_forced_closed: bool = False  # the budget, answer-now or the loop guard ended the thinking
    peak_batch: int = 1  # most sequences decoded in one step alongside (and including) this one


class Sequence:
    """One running request; the batch engine drives it, one decode step at a time."""

    def __init__(self, request: SequenceRequest, slot: int, vocab: Vocab, forced: Mapping[str, list[int]],
                 keys: dict[int, int | None] | None = None) -> None:
        self.request = request
        self.slot = slot
        self.sampling = request.sampling
        self.controls = request.controls
        self.chain = SamplerChain(request.sampling)
        prompt = request.prompt
        closed_in_prompt = self.controls.answer_directly and prompt.rendered.opens_thinking
        if closed_in_prompt:  # budget 0: as in `run`, the prompt itself holds a closed, empty thinking block
            prompt = close_thinking_in_prompt(prompt, forced[CLOSED_THINKING])
        self.steer = ReasoningController(vocab, self.controls, prompt.rendered.opens_thinking, closed_in_prompt,
                                         keys)
        self.reply = self.steer.reply
        self._forced = forced
        self.prompt_tokens = len(prompt.tokens)
        self.pending: list[int] = list(prompt.tokens)  # tokens to evaluate, in order
        self.offset = 0  # how many of `pending` are evaluated
        self.pos = 0  # tokens in this sequence's KV cache
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.last_token_at = self.started
        self.peak_batch = 1
        self.cancelled = False
        self.answer_now = False  # end the thinking at the next token (set from the stepping thread)

    @property
    def reading_prompt(self) -> bool:
        """True until the prompt's last token has been evaluated."""
        return self.first_token_at is None

    @property
    def generated(self) -> int:
        """Tokens of the reply so far."""
        return self.steer.generated

    @property
    def forced_close(self) -> bool:
        """True once the engine (budget, answer-now, loop) ended the thinking."""
        return self.steer.forced_closed

    def remaining(self) -> int:
        """Tokens still to evaluate before the next sample."""
        return len(self.pending) - self.offset

    def take(self, budget: int) -> tuple[list[int], bool]:
        """Up to `budget` tokens to evaluate now, and whether they end the pending run (logits wanted)."""
        end = min(len(self.pending), self.offset + budget)
        chunk = self.pending[self.offset:end]
        self.offset = end
        return chunk, end == len(self.pending)

    def accept(self, token: int, now: float, is_end: bool, context_size: int
               ) -> tuple[list[Event], StopReason | None, LengthLimit | None]:
        """Take a sampled token: its events, and why the sequence stops now (None: it goes on)."""
        if self.first_token_at is None:
            self.first_token_at = now
        if is_end:
            return [], "eos", None
        outcome = self.steer.step(token, now, self.answer_now)
        if outcome.kept:
            self.last_token_at = now
        if outcome.stop:
            return outcome.events, "repetition", None
        self.pending, self.offset = ([token] if outcome.kept else []), 0
        if outcome.close is not None:  # the transition and the closing tag go into the context, never the reply
            self.pending.extend(self._forced[self.steer.forced_text])
            self.answer_now = False
        if self.steer.generated >= self.sampling.max_tokens:
            return outcome.events, "length", "max_tokens"
        if self.pos + len(self.pending) >= context_size:
            return outcome.events, "length", "context"
        return outcome.events, None, None

    def finish(self, stop: StopReason, limit: LengthLimit | None, error: str | None = None
               ) -> tuple[list[Event], SequenceFinished]:
        """Flush the reply and build its final event."""
        events: list[Event] = list(self.reply.finish())
        self.chain.close()
        steer = self.steer
        first = self.first_token_at
        decode_s = self.last_token_at - first if first is not None else 0.0
        generated = steer.generated
        stats = GenerationStats(
            prompt_tokens=self.prompt_tokens,
            prompt_eval_tokens=min(self.pos, self.prompt_tokens),
            cached_tokens=0,
            generated_tokens=generated,
            time_to_first_token_s=(first or time.perf_counter()) - self.started,
            decode_s=decode_s,
            decode_tokens_per_s=(generated - 1) / decode_s if generated > 1 and decode_s > 0 else 0.0,
            stop_reason=stop,
            length_limit=limit,
            thinking_cut_off=stop == "length" and self.reply.in_thinking,
            thinking_tokens=steer.thinking_tokens,
            thinking_ended_by=steer.ended_by,
            loop_detected_after=steer.loop_after,
        )
        final = SequenceFinished(self.reply.thinking, self.reply.answer, stats, error,
                                 loop_detected_at=steer.loop_after, thinking_forced_closed=steer.forced_closed,
                                 peak_batch=self.peak_batch)
        return events, final
