"""A fake engine at the engine boundary: scripted thinking and answer, as fast or slow as asked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from localr1.engine.events import AnswerDelta, Event, Finished, GenerationStats, StopReason, ThinkingDelta
from localr1.engine.params import LoadParams, SamplingParams
from localr1.engine.template import ChatMessage
from localr1.errors import ModelLoadError


@dataclass
class FakeScript:
    """What the fake model says."""

    thinking: list[str] = field(default_factory=lambda: ["Let me ", "think ", "about ", "it."])
    answer: list[str] = field(default_factory=lambda: ["Here is ", "the **answer**.\n\n", "```python\n",
                                                        "print('hi')\n", "```\n"])
    delay_s: float = 0.0
    hold: threading.Event | None = None  # when set, the stream waits here after the thinking


class FakeEngine:
    """Implements localr1.engine.port.ChatEngine without a model."""

    def __init__(self, script: FakeScript | None = None, load: LoadParams | None = None) -> None:
        self.script = script or FakeScript()
        self.load_params = load or LoadParams(context_size=4096)
        self.sampling = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=1024)
        self.calls: list[tuple[list[ChatMessage], SamplingParams]] = []
        self.cancelled = threading.Event()
        self.closed = False
        self.model = ""

    @property
    def context_size(self) -> int:
        return self.load_params.context_size

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def describe(self) -> dict[str, Any]:
        return {"model": "Fake R1", "quant": "Q4_K_M", "load": self.load_params.as_dict()}

    def cancel(self) -> None:
        self.cancelled.set()

    def close(self) -> None:
        self.closed = True

    def chat(self, messages: list[ChatMessage], sampling: SamplingParams | None = None) -> Iterator[Event]:
        self.calls.append((list(messages), sampling or self.sampling))
        self.cancelled.clear()
        thinking: list[str] = []
        answer: list[str] = []
        stop: StopReason = "eos"
        for channel, pieces in (("thinking", self.script.thinking), ("answer", self.script.answer)):
            if channel == "answer" and self.script.hold is not None:
                while not self.script.hold.wait(0.01):
                    if self.cancelled.is_set():
                        break
            for piece in pieces:
                if self.cancelled.is_set():
                    stop = "cancelled"
                    break
                if self.script.delay_s:
                    time.sleep(self.script.delay_s)
                if channel == "thinking":
                    thinking.append(piece)
                    yield ThinkingDelta(piece)
                else:
                    answer.append(piece)
                    yield AnswerDelta(piece)
            if stop == "cancelled":
                break
        n = len(thinking) + len(answer)
        stats = GenerationStats(prompt_tokens=100, prompt_eval_tokens=100, cached_tokens=0, generated_tokens=n,
                                time_to_first_token_s=0.25, decode_s=1.0, decode_tokens_per_s=42.0,
                                stop_reason=stop)
        yield Finished("".join(thinking), "".join(answer), stats)


class FakeFactory:
    """An engine factory that records loads; a model named 'broken' fails to load."""

    def __init__(self, script: FakeScript | None = None, load_delay_s: float = 0.0) -> None:
        self.script = script or FakeScript()
        self.load_delay_s = load_delay_s
        self.loads: list[tuple[str, LoadParams, dict[str, Any]]] = []
        self.engines: list[FakeEngine] = []

    def __call__(self, model: str, load: LoadParams, overrides: dict[str, Any]) -> FakeEngine:
        self.loads.append((model, load, overrides))
        time.sleep(self.load_delay_s)
        if "broken" in model:
            raise ModelLoadError(f"llama.cpp could not load {model}: bad tensor data")
        engine = FakeEngine(self.script, load)
        engine.model = model
        self.engines.append(engine)
        return engine
