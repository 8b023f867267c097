"""What the server needs of a batch: the in-process `Scheduler` and the child-process `IsolatedBatch` both are one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from localr1.engine.batch.sequence import SequenceRequest
    from localr1.engine.engine import PreparedPrompt
    from localr1.engine.events import Event
    from localr1.engine.params import SamplingParams
    from localr1.engine.template import ChatMessage

Sink = Callable[["Event"], None]


class BatchService(Protocol):
    """Requests in, each one's events out to its sink (the last a `Finished`); every method safe from any thread."""

    @property
    def sampling(self) -> SamplingParams:
        """The model's default sampling, which requests override."""

    def prepare(self, messages: list[ChatMessage]) -> PreparedPrompt:
        """Render and tokenize a conversation (a `LocalR1Error` when it cannot run; `WorkerError`: a worker is
        missing)."""

    def submit(self, request: SequenceRequest, sink: Sink) -> None:
        """Queue a request; its events go to `sink`."""

    def cancel(self, request_id: str) -> None:
        """Stop a request, waiting or running."""

    def health(self) -> dict[str, Any]:
        """Slots, load and counters, as `/health` shows them."""

    def close(self) -> None:
        """Stop every request (a Scheduler leaves its engine to its owner; IsolatedBatch frees the model)."""
