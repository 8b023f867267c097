"""Batched generation: many sequences in one llama.cpp context, each with its own sampler, stop and reply."""

from localr1.engine.batch.engine import BatchEngine, NoFreeSlotError, SequenceEvent
from localr1.engine.batch.sequence import SequenceFinished, SequenceRequest

__all__ = [
    "BatchEngine",
    "NoFreeSlotError",
    "SequenceEvent",
    "SequenceFinished",
    "SequenceRequest",
]
