"""The scrolling transcript; it follows the stream unless the user scrolled up.

It holds a window of a conversation's messages between two markers that say when older or newer
messages exist beyond it; whoever pages it (localr1/tui/pager.py) is told when the view scrolls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from localr1.tui.widgets.message_view import MessageView


class Transcript(VerticalScroll):
    """Holds MessageViews; anchored to the bottom while the user has not scrolled away."""

    def __init__(self) -> None:
        super().__init__(id="transcript")
        self.older_marker = Static("↑ older messages load as you scroll up", classes="edge-marker")
        self.newer_marker = Static("↓ newer messages load as you scroll down", classes="edge-marker")
        self.older_marker.display = self.newer_marker.display = False
        self.on_moved: Callable[[], None] | None = None  # called when the view scrolls or resizes

    def compose(self) -> ComposeResult:
        yield self.older_marker
        yield self.newer_marker

    def on_mount(self) -> None:
        self.anchor()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.on_moved is not None and round(old_value) != round(new_value):
            self.on_moved()

    def on_resize(self) -> None:
        if self.on_moved is not None:
            self.on_moved()

    @property
    def views(self) -> list[MessageView]:
        """The messages shown, in order (children only: a query would walk every Markdown block)."""
        return [child for child in self.children if isinstance(child, MessageView)]

    async def add(self, view: MessageView) -> MessageView:
        """Append a message."""
        await self.mount(view, before=self.newer_marker)
        return view

    async def show(self, views: Sequence[MessageView]) -> None:
        """Replace every message with `views`."""
        with self.app.batch_update():
            await self.drop(self.views)
            if views:
                await self.mount_all(views, before=self.newer_marker)

    async def drop(self, views: Sequence[MessageView]) -> None:
        """Unmount messages, so that they can be freed."""
        await self.remove_children(views)
        # Textual caches the list of displayed children until it is next asked for, and the cached
        # list would keep the removed views (and everything they hold) alive until then.
        self.displayed_children  # noqa: B018

    async def prepend(self, views: Sequence[MessageView]) -> None:
        """Insert messages before the first one."""
        await self.mount_all(views, after=self.older_marker)

    async def extend(self, views: Sequence[MessageView]) -> None:
        """Insert messages after the last one."""
        await self.mount_all(views, before=self.newer_marker)

    def mark_edges(self, older: bool, newer: bool) -> None:
        """Show the markers of the ends that have more messages beyond them."""
        self.older_marker.display = older
        self.newer_marker.display = newer
