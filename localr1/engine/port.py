"""What the UI needs of an engine: the real one and test fakes both satisfy this protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from localr1.engine.events import Event
from localr1.engine.params import LoadParams, LoadRequest, SamplingParams
from localr1.engine.template import ChatMessage
from localr1.engine.thinking import ThinkingControl


class ChatEngine(Protocol):
    """A loaded model that streams typed events."""

    load_params: LoadParams
    sampling: SamplingParams

    @property
    def context_size(self) -> int:
        """Tokens the context window holds."""
        ...

    def chat(
        self, messages: list[ChatMessage], sampling: SamplingParams | None = None,
        thinking: ThinkingControl | None = None,
    ) -> Iterator[Event]:
        """Stream the reply to messages."""
        ...

    def cancel(self) -> None:
        """Stop the running generation after the current token."""
        ...

    def answer_now(self) -> None:
        """End the thinking now and answer (inert when the model is not thinking)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens in plain text."""
        ...

    def describe(self) -> dict[str, Any]:
        """Model name, quant, load parameters."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


EngineFactory = Callable[[str, LoadRequest, dict[str, Any]], ChatEngine]
