"""The scrolling transcript; it follows the stream unless the user scrolled up."""

from __future__ import annotations

from textual.containers import VerticalScroll

from localr1.tui.widgets.message_view import MessageView


class Transcript(VerticalScroll):
    """Holds MessageViews; anchored to the bottom while the user has not scrolled away."""

    def __init__(self) -> None:
        super().__init__(id="transcript")

    def on_mount(self) -> None:
        self.anchor()

    @property
    def views(self) -> list[MessageView]:
        """The messages shown, in order."""
        return list(self.query(MessageView))

    async def add(self, view: MessageView) -> MessageView:
        """Append a message."""
        await self.mount(view)
        return view
