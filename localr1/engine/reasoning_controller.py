"""One reply's reasoning controls applied token by token, shared by the single engine and each batch sequence.

The controller owns the reply's text (a ReplyAssembler) and decides, for each sampled token, whether it
belongs to the reply, whether the thinking ends now (budget through BudgetCut at a boundary, "answer now",
or a loop), and whether the loop guard stops the answer. Feeding the forced close to the model is the
caller's job: it knows its own context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from localr1.engine.events import Event, LoopDetected, ThinkingClosed, ThinkingEnd
from localr1.engine.loop_guard import LoopGuard, token_key
from localr1.engine.reply import ReplyAssembler
from localr1.engine.thinking import CLOSED_THINKING, FORCED_CLOSE, BudgetCut, ThinkingControl
from localr1.engine.vocab import Vocab

ENGINE_CLOSES: tuple[ThinkingEnd, ...] = ("budget", "answer_now", "loop")


@dataclass
class TokenOutcome:
    """What one sampled token did: its events in order, and what the caller must do next."""

    events: list[Event] = field(default_factory=list)
    kept: bool = True  # the token is part of the reply (False: the thinking ended just before it)
    close: ThinkingEnd | None = None  # the thinking ended now: feed `forced_text` to the model after the token
    stop: bool = False  # the loop guard stopped the answer (stop reason "repetition")


class ReasoningController:
    """The thinking budget, answer-now and the loop guard for one reply, fed one sampled token at a time."""

    def __init__(self, vocab: Vocab, control: ThinkingControl, start_in_thinking: bool, closed_in_prompt: bool,
                 keys: dict[int, int | None] | None = None) -> None:
        self.vocab = vocab
        self.control = control
        self.reply = ReplyAssembler(vocab, start_in_thinking=start_in_thinking)
        self.guard = LoopGuard() if control.loop_guard != "off" else None
        # Fed to the model after a close the engine makes (never shown, never in a later turn).
        self.forced_text = CLOSED_THINKING if control.answer_directly else FORCED_CLOSE
        self.generated = 0
        self.thinking_tokens = 0
        self.ended_by: ThinkingEnd | None = "budget" if closed_in_prompt else None
        self.loop_after: int | None = None  # generated tokens when the guard first fired
        self._keys = keys if keys is not None else {}  # token -> guard key, shareable between replies
        self._cut: BudgetCut | None = None
        self._pending: ThinkingEnd | None = "budget" if control.answer_directly else None
        self._first_at: float | None = None

    @property
    def forced_closed(self) -> bool:
        """True when the engine, not the model, ended the thinking (budget, answer-now or a loop)."""
        return self.ended_by in ENGINE_CLOSES

    def _key(self, token: int) -> int | None:
        if token not in self._keys:
            self._keys[token] = token_key(self.vocab.piece(token))
        return self._keys[token]

    def step(self, token: int, now: float, answer_now: bool = False) -> TokenOutcome:
        """Take one sampled token (not an end-of-generation one) at time `now`."""
        if self._first_at is None:
            self._first_at = now
        reply = self.reply
        out = TokenOutcome()
        thinking = reply.in_thinking
        if thinking:
            if self._pending is None and answer_now:
                self._pending = "answer_now"
            if self._pending is not None:
                if not reply.mid_character:  # now, before this token: never half a character
                    out.close, out.kept = self._pending, False
            elif self.control.over_budget(self.thinking_tokens, now - self._first_at):
                self._cut = self._cut or BudgetCut()
                if self._cut.before(reply.tail, self.vocab.piece(token).decode("utf-8", "replace")):
                    out.close, out.kept = "budget", False
        if out.kept:
            self._keep(token, thinking, out)
            if out.stop:
                return out
        if out.close is not None:
            out.events.extend(reply.close_thinking())
            self.ended_by, self._pending, self._cut = out.close, None, None
            if self.guard is not None:
                self.guard.reset()
            out.events.append(ThinkingClosed(out.close, self.thinking_tokens))
        return out

    def _keep(self, token: int, thinking: bool, out: TokenOutcome) -> None:
        reply = self.reply
        self.generated += 1
        out.events.extend(reply.feed(token))
        if thinking:
            self.thinking_tokens += 1
            if not reply.in_thinking:
                self.ended_by = "model"
            elif out.close is None and self._pending is not None:
                out.close = self._pending  # the split character is whole now
            elif out.close is None and self._cut is not None and self._cut.after(reply.tail):
                out.close = "budget"
        guard = self.guard
        if guard is None:
            return
        key = self._key(token)
        hit = guard.feed(key, thinking=thinking) if key is not None else None
        if hit is not None:
            guard.reset()
            self.loop_after = self.loop_after or self.generated
            acting = self.control.loop_guard == "act"
            out.events.append(LoopDetected(self.generated, hit.period, reply.in_thinking, acting))
            if acting and not reply.in_thinking:
                out.stop = True
                return
            if acting and out.close is None:
                if reply.mid_character:
                    self._pending = "loop"
                else:
                    out.close = "loop"
        if thinking and not reply.in_thinking:
            guard.reset()  # the answer is watched on its own
