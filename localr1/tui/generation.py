"""The generation worker: runs the engine in a thread and posts batched updates to the app."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from textual.message import Message
from textual.message_pump import MessagePump

from localr1.engine.events import AnswerDelta, ContextTrimmed, Finished, SlowDecoding, ThinkingDelta
from localr1.engine.params import LoadParams, SamplingParams, default_threads
from localr1.engine.port import ChatEngine
from localr1.engine.template import ChatMessage
from localr1.engine.thinking import ThinkingControl
from localr1.residency import lock_status_from, slow_decoding_notice
from localr1.tui.text import one_line

# How often the UI drains the buffer; the model never waits for the UI. Each tick is one layout and one
# paint (chat.py batches it), whose CPU is taken from llama.cpp's threads when they hold every CPU: on 2 cores
# the app decoded the demo at 0.61x `localr1 run` drawing 30 times a second, 0.74x at 10, 0.93x at 5 and 0.97x
# at 2 (benchmarks/tui_scale.py, decode; RESULTS.md, issue 12). A spare CPU draws at 5 Hz for free.
REFRESH_INTERVAL_S = 1 / 5
SHARED_CPU_REFRESH_INTERVAL_S = 1 / 2
MAX_CHARS_PER_REFRESH = 2000  # 10,000 characters a second (~2,500 tokens): far above any local model


def refresh_interval(load: LoadParams) -> float:
    """Seconds between screen updates while an answer streams: less often when llama.cpp's threads use every
    CPU this process may run on (the drawing would take its time from them)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    threads = load.threads or default_threads()
    return SHARED_CPU_REFRESH_INTERVAL_S if threads >= cpus else REFRESH_INTERVAL_S


@dataclass
class StreamBatch:
    """Text that arrived since the UI last looked."""

    thinking: str
    answer: str
    thinking_tokens: int
    answer_tokens: int


class StreamBuffer:
    """Deltas handed from the worker thread to the UI, which drains them on its own timer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thinking: deque[str] = deque()
        self._answer: deque[str] = deque()

    def add(self, thinking: str = "", answer: str = "") -> None:
        """Called by the worker for each delta; never waits for the UI."""
        with self._lock:
            if thinking:
                self._thinking.append(thinking)
            if answer:
                self._answer.append(answer)

    def drain(self, max_chars: int) -> StreamBatch | None:
        """Up to about max_chars of the oldest pending text (thinking first), or None when empty.

        Capping each drain bounds the rendering work per UI tick, so keys stay responsive
        even when the model is far faster than Markdown rendering.
        """
        with self._lock:
            thinking, n_thinking = _take(self._thinking, max_chars)
            answer, n_answer = _take(self._answer, max_chars - len(thinking)) if not self._thinking else ("", 0)
        if not thinking and not answer:
            return None
        return StreamBatch(thinking, answer, n_thinking, n_answer)

    def empty(self) -> bool:
        """True when nothing is waiting."""
        with self._lock:
            return not self._thinking and not self._answer


def _take(pieces: deque[str], max_chars: int) -> tuple[str, int]:
    """Remove whole pieces from the front while they fit (always at least one)."""
    taken: list[str] = []
    size = 0
    while pieces and (not taken or size + len(pieces[0]) <= max_chars):
        size += len(pieces[0])
        taken.append(pieces.popleft())
    return "".join(taken), len(taken)


class GenerationDone(Message):
    """The engine finished (eos, length, cancelled or error)."""

    def __init__(self, finished: Finished) -> None:
        super().__init__()
        self.finished = finished


class GenerationFailed(Message):
    """The engine raised before producing a result (for example, context overflow)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class ContextNotice(Message):
    """Older turns were left out of the prompt to fit the context."""

    def __init__(self, dropped: int) -> None:
        super().__init__()
        self.dropped = dropped


class SlowNotice(Message):
    """Decoding started far below the planner's prediction: the one line to show."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class PromptTrimmed(Message):
    """The newest message was cut to fit the context."""

    def __init__(self, text: str, kept_tokens: int, total_tokens: int) -> None:
        super().__init__()
        self.text, self.kept_tokens, self.total_tokens = text, kept_tokens, total_tokens


@dataclass
class Trim:
    """Result of fitting one message into a token budget."""

    text: str
    kept_tokens: int
    total_tokens: int


def fit_message(count_tokens: Callable[[str], int], text: str, budget: int) -> Trim:
    """Cut text (keeping its start) until it is at most `budget` tokens."""
    if len(text) * 4 <= budget:  # no character is more than 4 tokens
        return Trim(text, -1, -1)
    budget = max(budget, 1)
    total = count_tokens(text)
    kept_text, kept = text, total
    while kept > budget and len(kept_text) > 1:
        kept_text = kept_text[: max(1, int(len(kept_text) * budget / kept * 0.97))]
        kept = count_tokens(kept_text)
    return Trim(kept_text, kept, total)


def run_generation(
    target: MessagePump,
    engine: ChatEngine,
    messages: list[ChatMessage],
    sampling: SamplingParams,
    buffer: StreamBuffer,
    *,
    stop: threading.Event | None = None,
    thinking: ThinkingControl | None = None,
) -> None:
    """Thread body: fit the newest message, then stream the reply into `buffer`.

    `stop` is set by the UI; it is passed on to the engine with each event, so a stop that
    came before the engine started (and reset its own flag) still takes effect.
    """
    try:
        reserve = min(sampling.max_tokens, engine.context_size // 4) + 64
        trim = fit_message(engine.count_tokens, messages[-1].content, engine.context_size - reserve)
        if trim.text != messages[-1].content:
            messages = [*messages[:-1], ChatMessage("user", trim.text)]
            target.post_message(PromptTrimmed(trim.text, trim.kept_tokens, trim.total_tokens))
        for event in engine.chat(messages, sampling, thinking):
            if stop is not None and stop.is_set():
                engine.cancel()
            if isinstance(event, ThinkingDelta):
                buffer.add(thinking=event.text)
            elif isinstance(event, AnswerDelta):
                buffer.add(answer=event.text)
            elif isinstance(event, ContextTrimmed):
                target.post_message(ContextNotice(event.dropped_messages))
            elif isinstance(event, SlowDecoding):
                lock = lock_status_from(engine.describe().get("plan"))
                target.post_message(SlowNotice(slow_decoding_notice(event.measured_tps, event.predicted_tps, lock)))
            elif isinstance(event, Finished):
                target.post_message(GenerationDone(event))
                return
    except Exception as exc:  # a user error, a bug or a native failure: report it, keep the app alive
        target.post_message(GenerationFailed(one_line(exc)))
