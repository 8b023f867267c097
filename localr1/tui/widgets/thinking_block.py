"""The model's reasoning in a collapsible block with a live label."""

from __future__ import annotations

from textual.widgets import Collapsible

from localr1.tui.widgets.document import Document


class ThinkingBlock(Collapsible):
    """Open while the model thinks; collapses when the answer starts."""

    def __init__(self, text: str = "", *, live: bool = False, collapsed: bool = True) -> None:
        self.text = text
        self.tokens = 0
        self.seconds = 0.0
        self.speed: float | None = None
        self.live = live
        self._body = Document(text, classes="thinking-body")
        super().__init__(self._body, title=self._label(), collapsed=collapsed, classes="thinking")

    def _label(self) -> str:
        if self.live:
            speed = f", {self.speed:.1f} tok/s" if self.speed else ""
            return f"thinking… {self.tokens} tokens, {self.seconds:.0f} s{speed}"
        if self.tokens:
            return f"thought for {self.seconds:.0f} s ({self.tokens} tokens)"
        return "thinking"

    def update_label(self, tokens: int, seconds: float, speed: float | None = None) -> None:
        """Refresh the live token count, elapsed time and speed."""
        self.tokens, self.seconds, self.speed = tokens, seconds, speed
        self.title = self._label()

    async def append(self, text: str) -> None:
        """Stream more reasoning into the block."""
        self.text += text
        await self._body.append(text)

    async def finish(self) -> None:
        """Stop streaming; render the whole text again only if it differs from what was streamed."""
        self.live = False
        if not self._body.shows(self.text):
            await self._body.update(self.text)
        self.title = self._label()
