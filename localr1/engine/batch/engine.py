"""Several sequences through one llama.cpp context: one decode per step, each sequence sampled on its own."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from localr1.engine.batch.native import BatchContext, BatchEntry
from localr1.engine.batch.sequence import Sequence, SequenceFinished, SequenceRequest
from localr1.engine.engine import PreparedPrompt, check_load_params, tokenize_prompt
from localr1.engine.events import Event, LengthLimit, StopReason
from localr1.engine.params import LoadParams, SamplingParams
from localr1.engine.template import ChatMessage, RenderedPrompt, compile_template, render
from localr1.engine.thinking import CLOSED_THINKING, FORCED_CLOSE
from localr1.engine.vocab import Vocab
from localr1.errors import ConfigError, ContextOverflowError, LocalR1Error
from localr1.ggufinfo import GGUFInfo, read_info

SequenceEvent = tuple[str, Event]  # (request id, event)


class NoFreeSlotError(LocalR1Error):
    """Every sequence slot is busy."""


class BatchEngine:
    """One model, `parallel` sequence slots of `load.context_size` tokens each. Not thread-safe: one thread steps it."""

    def __init__(self, model_path: str | Path, load: LoadParams, sampling: SamplingParams, parallel: int) -> None:
        if parallel < 1:
            raise ConfigError(f"--parallel must be at least 1, got {parallel}")
        self.info: GGUFInfo = read_info(model_path)
        self.load_params = load.resolved()
        check_load_params(self.load_params)
        self.sampling = sampling
        if self.info.chat_template:
            compile_template(self.info.chat_template)
        started = time.perf_counter()
        self._native = BatchContext(self.info.path, self.load_params, parallel)
        self.load_seconds = time.perf_counter() - started
        self.parallel = parallel
        self.slot_context = self._native.slot_context
        self.vocab = Vocab(self._native.vocab_pointer)
        self._step_vocab = Vocab(self._native.vocab_pointer)  # its own piece buffer: prepare() may run elsewhere
        # The texts a forced close feeds the model (the closing tag parsed as the special token it may be).
        self._forced = {text: self.vocab.tokenize(text, add_bos=False, special=True)
                        for text in (CLOSED_THINKING, FORCED_CLOSE)}
        self._keys: dict[int, int | None] = {}  # the loop guard's key per token, shared by every sequence
        self._free = list(range(parallel - 1, -1, -1))
        self._active: dict[str, Sequence] = {}
        self.steps = 0  # decode calls so far
        self.stopped: Counter[str] = Counter()  # finished sequences by stop reason
        self.peak_active = 0  # most sequences in one decode so far

    # Preparing prompts (safe from any thread: rendering and tokenizing touch no shared state).

    def render(self, messages: list[ChatMessage]) -> RenderedPrompt:
        """Render messages with the model's template (R1 rules for R1 distills)."""
        return render(self.info.chat_template, messages, bos_token=self.info.bos_token,
                      eos_token=self.info.eos_token, r1_rules=self.info.is_r1)

    def prepare(self, messages: list[ChatMessage]) -> PreparedPrompt:
        """Render and tokenize a conversation; one over a slot's context is a ContextOverflowError."""
        if not messages or messages[-1].role != "user":
            raise ConfigError("a conversation must end with a user message")
        rendered = self.render(messages)
        tokens = tokenize_prompt(self.vocab, rendered)
        if len(tokens) >= self.slot_context:
            raise ContextOverflowError(
                f"the prompt is {len(tokens)} tokens but each sequence's context holds {self.slot_context}; "
                "shorten it or raise the context size (--ctx)")
        return PreparedPrompt(tokens, rendered, 0)

    # Driving the batch (one thread).

    @property
    def free_slots(self) -> int:
        """Slots that can take a sequence now."""
        return len(self._free)

    @property
    def active(self) -> int:
        """Sequences running now."""
        return len(self._active)

    def admit(self, request: SequenceRequest) -> None:
        """Start a sequence in a free slot."""
        if not self._free:
            raise NoFreeSlotError("every sequence slot is busy")
        if request.request_id in self._active:
            raise ConfigError(f"request id {request.request_id!r} is already running")
        slot = self._free.pop()
        self._active[request.request_id] = Sequence(request, slot, self._step_vocab, self._forced, self._keys)

    def cancel(self, request_id: str) -> None:
        """Stop a sequence at the next step (its slot is freed then); unknown ids are ignored."""
        sequence = self._active.get(request_id)
        if sequence is not None:
            sequence.cancelled = True

    def answer_now(self, request_id: str) -> None:
        """End a sequence's thinking at its next token, keeping it (call from the stepping thread)."""
        sequence = self._active.get(request_id)
        if sequence is not None:
            sequence.answer_now = True

    def abort(self) -> None:
        """Stop the decode under way from another thread; every running sequence ends as cancelled."""
        self._native.abort.trip()

    def step(self) -> list[SequenceEvent]:
        """One decode over every running sequence (prompt chunks fill what single tokens leave); their events."""
        out: list[SequenceEvent] = []
        for sequence in [s for s in self._active.values() if s.cancelled]:
            self._finish(sequence, "cancelled", None, out)
        if not self._active:
            return out
        entries: list[BatchEntry] = []
        taken: list[tuple[Sequence, int, bool]] = []
        budget = self._native.batch_size
        # Sequences already generating first (one token each), then prompts, oldest first.
        for sequence in sorted(self._active.values(), key=lambda s: s.reading_prompt):
            if sequence.pos + sequence.remaining() > self.slot_context:
                # e.g. a prompt near the context plus the closing tag a zero thinking budget queues: decoding it
                # would fail the whole batch, every other sequence with it
                self._finish(sequence, "length", "context", out)
                continue
            if budget == 0:
                break
            chunk, ends = sequence.take(budget)
            if not chunk:
                continue
            for i, token in enumerate(chunk):
                entries.append(BatchEntry(token, sequence.slot, sequence.pos + i, ends and i == len(chunk) - 1))
            taken.append((sequence, len(chunk), ends))
            budget -= len(chunk)
        try:
            outputs = self._native.decode(entries)
        except RuntimeError as exc:
            aborted = self._native.abort.tripped
            self._native.abort.reset()
            for sequence in list(self._active.values()):
                if aborted:
                    self._finish(sequence, "cancelled", None, out)
                else:
                    self._finish(sequence, "error", None, out, f"generation failed: {exc}")
            return out
        self.steps += 1
        self.peak_active = max(self.peak_active, len(taken))
        now = time.perf_counter()
        for sequence, count, ends in taken:
            sequence.pos += count
            sequence.peak_batch = max(sequence.peak_batch, len(taken))
            if not ends:
                continue
            token = sequence.chain.sample(self._native.ctx, outputs[sequence.slot])
            deltas, stop, limit = sequence.accept(token, now, self.vocab.is_end(token), self.slot_context)
            rid = sequence.request.request_id
            out.extend((rid, delta) for delta in deltas)
            if stop is not None:
                self._finish(sequence, stop, limit, out)
        return out

    def _finish(self, sequence: Sequence, stop: StopReason, limit: LengthLimit | None, out: list[SequenceEvent],
                error: str | None = None) -> None:
        deltas, final = sequence.finish(stop, limit, error)
        rid = sequence.request.request_id
        out.extend((rid, delta) for delta in deltas)
        out.append((rid, final))
        del self._active[rid]
        self.stopped[stop] += 1
        self._native.free_sequence(sequence.slot)
        self._free.append(sequence.slot)

    def run(self, requests: list[SequenceRequest]) -> Iterator[SequenceEvent]:
        """Run requests to completion, admitting each as a slot frees up; events as they come."""
        waiting = list(reversed(requests))
        while waiting or self._active:
            while waiting and self._free:
                self.admit(waiting.pop())
            yield from self.step()

    def close(self) -> None:
        """Free the context and the model."""
        self._native.close()

    def describe(self) -> dict[str, object]:
        """Model and load facts, for JSON output."""
        return {
            "model": self.info.name,
            "path": str(self.info.path),
            "quant": self.info.file_type,
            "parallel": self.parallel,
            "slot_context": self.slot_context,
            "load": self.load_params.as_dict(),
        }


__all__ = ["BatchEngine", "NoFreeSlotError", "SequenceEvent", "SequenceFinished", "SequenceRequest"]
