"""The engine package: the only place that imports llama_cpp (the UI sees typed events)."""

from localr1.engine.events import (
    AnswerDelta,
    ContextTrimmed,
    Event,
    Finished,
    GenerationStats,
    LoopDetected,
    SlowDecoding,
    ThinkingClosed,
    ThinkingDelta,
)
from localr1.engine.params import LoadParams, LoadRequest, SamplingParams
from localr1.engine.template import ChatMessage
from localr1.engine.thinking import ThinkingControl

__all__ = [
    "AnswerDelta",
    "ChatMessage",
    "ContextTrimmed",
    "Event",
    "Finished",
    "GenerationStats",
    "LoadParams",
    "LoadRequest",
    "LoopDetected",
    "SamplingParams",
    "SlowDecoding",
    "ThinkingClosed",
    "ThinkingControl",
    "ThinkingDelta",
]
