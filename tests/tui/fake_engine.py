"""A fake engine at the engine boundary: scripted thinking and answer, as fast or slow as asked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jinja2

from localr1.engine.events import (
    AnswerDelta,
    ContextTrimmed,
    Event,
    Finished,
    GenerationStats,
    StopReason,
    ThinkingClosed,
    ThinkingDelta,
    ThinkingEnd,
)
from localr1.engine.params import LoadParams, LoadRequest, SamplingParams
from localr1.engine.template import ChatMessage
from localr1.engine.thinking import ThinkingControl
from localr1.errors import ModelLoadError


@dataclass
class FakeScript:
    """What the fake model says."""

    thinking: list[str] = field(default_factory=lambda: ["Let me ", "think ", "about ", "it."])
    answer: list[str] = field(default_factory=lambda: ["Here is ", "the **answer**.\n\n", "```python\n",
                                                        "print('hi')\n", "```\n"])
    delay_s: float = 0.0
    hold: threading.Event | None = None  # when given, the stream waits for it before answer piece `hold_at`
    hold_at: int = 0
    stop: StopReason = "eos"  # how a stream that ran to its end stops ("length": cut at the token limit)
    name: str = "Fake R1"  # what describe() reports as the model's name (from its GGUF in real life)
    describe_error: Exception | None = None  # describe() raises this
    pace: threading.Semaphore | None = None  # when given, each piece waits for one release (a step-by-step stream)
    dropped: int = 0  # the engine left this many older messages out of the prompt (a ContextTrimmed event first)
    fail_after: int | None = None  # raise mid-stream after this many answer pieces
    start_gate: threading.Event | None = None  # when given, chat() waits for it before it starts (and resets cancel)
    think_hold: threading.Event | None = None  # when given, the thinking waits for it (or answer-now) at its end
    display_name: str | None = None  # the registry's name, as the real loader sets it
    loop_after: int | None = None  # stats: the loop guard fired after this many tokens


class FakeEngine:
    """Implements localr1.engine.port.ChatEngine without a model."""

    def __init__(self, script: FakeScript | None = None, load: LoadParams | None = None) -> None:
        self.script = script or FakeScript()
        self.load_params = load or LoadParams(context_size=4096)
        self.sampling = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=1024)
        self.calls: list[tuple[list[ChatMessage], SamplingParams]] = []
        self.controls: list[ThinkingControl | None] = []
        self.cancelled = threading.Event()
        self.answer_asked = threading.Event()
        self.closed = False
        self.model = ""
        self.holding = threading.Event()  # set while the stream waits on script.hold
        self.starting = threading.Event()  # set while chat() waits on script.start_gate

    @property
    def context_size(self) -> int:
        return self.load_params.context_size

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def describe(self) -> dict[str, Any]:
        if self.script.describe_error is not None:
            raise self.script.describe_error
        return {"model": self.script.name, "display_name": self.script.display_name, "quant": "Q4_K_M",
                "reasoning": bool(self.script.thinking), "load": self.load_params.as_dict()}

    def cancel(self) -> None:
        self.cancelled.set()

    def answer_now(self) -> None:
        self.answer_asked.set()

    def close(self) -> None:
        self.closed = True

    def chat(self, messages: list[ChatMessage], sampling: SamplingParams | None = None,
             thinking: ThinkingControl | None = None) -> Iterator[Event]:
        self.calls.append((list(messages), sampling or self.sampling))
        if self.script.start_gate is not None:
            self.starting.set()
            self.script.start_gate.wait(60)
        self.controls.append(thinking)
        self.cancelled.clear()  # as the real engine does: a cancel from before this call is forgotten
        self.answer_asked.clear()
        if self.script.dropped:
            yield ContextTrimmed(self.script.dropped, self.context_size - 200, self.context_size)
        thought: list[str] = []
        answer: list[str] = []
        stop: StopReason = self.script.stop
        ended: ThinkingEnd | None = None
        for channel, pieces in (("thinking", self.script.thinking), ("answer", self.script.answer)):
            if channel == "answer" and self.script.think_hold is not None:
                while not (self.script.think_hold.wait(0.01) or self.answer_asked.is_set() or self.cancelled.is_set()):
                    pass
                if self.answer_asked.is_set():
                    ended = "answer_now"
                    yield ThinkingClosed("answer_now", len(thought))
            for index, piece in enumerate(pieces):
                if channel == "answer" and index == self.script.fail_after:
                    raise RuntimeError("llama_decode returned -3: the KV cache is full")
                if channel == "answer" and index == self.script.hold_at:
                    self._wait_for_hold()
                if self.cancelled.is_set():
                    stop = "cancelled"
                    break
                if self.script.delay_s:
                    time.sleep(self.script.delay_s)
                if self.script.pace is not None:
                    self._wait_for_pace()
                    if self.cancelled.is_set():
                        stop = "cancelled"
                        break
                if channel == "thinking":
                    thought.append(piece)
                    yield ThinkingDelta(piece)
                else:
                    answer.append(piece)
                    yield AnswerDelta(piece)
            if channel == "answer" and len(pieces) <= self.script.hold_at:
                self._wait_for_hold()
                stop = "cancelled" if self.cancelled.is_set() else stop
            if stop == "cancelled":
                break
        n = len(thought) + len(answer)
        stats = GenerationStats(prompt_tokens=100, prompt_eval_tokens=100, cached_tokens=0, generated_tokens=n,
                                time_to_first_token_s=0.25, decode_s=1.0, decode_tokens_per_s=42.0,
                                stop_reason=stop, thinking_tokens=len(thought), thinking_ended_by=ended,
                                loop_detected_after=self.script.loop_after)
        yield Finished("".join(thought), "".join(answer), stats)

    def _wait_for_pace(self) -> None:
        assert self.script.pace is not None
        while not self.script.pace.acquire(timeout=0.01) and not self.cancelled.is_set():
            pass

    def _wait_for_hold(self) -> None:
        if self.script.hold is None:
            return
        self.holding.set()
        while not self.script.hold.wait(0.01) and not self.cancelled.is_set():
            pass
        self.holding.clear()


def broken_template() -> None:
    """Raise the error jinja2 gives for a chat template with a syntax error (not a LocalR1Error)."""
    jinja2.Environment().from_string("{% for m in messages %}{{ m.content }")


class FakeFactory:
    """An engine factory that records loads; a model named 'broken' fails to load, one named
    'badtemplate' raises jinja2's TemplateSyntaxError as a raw load would."""

    def __init__(self, script: FakeScript | None = None, load_delay_s: float = 0.0) -> None:
        self.script = script or FakeScript()
        self.load_delay_s = load_delay_s
        self.loads: list[tuple[str, LoadRequest, dict[str, Any]]] = []
        self.engines: list[FakeEngine] = []
        self.gates: dict[str, threading.Event] = {}  # a load of this model waits until its event is set

    def __call__(self, model: str, load: LoadRequest, overrides: dict[str, Any]) -> FakeEngine:
        self.loads.append((model, load, overrides))
        time.sleep(self.load_delay_s)
        gate = self.gates.get(model)
        if gate is not None and not gate.wait(60):
            raise ModelLoadError(f"test gate for {model} never opened")
        if "broken" in model:
            raise ModelLoadError(f"llama.cpp could not load {model}: bad tensor data")
        if "badtemplate" in model:
            broken_template()
        engine = FakeEngine(self.script, LoadParams(context_size=load.context_size or 4096))
        engine.model = model
        self.engines.append(engine)
        return engine
