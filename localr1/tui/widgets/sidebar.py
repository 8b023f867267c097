"""The list of conversations: the most recent first, a page at a time."""

from __future__ import annotations

from collections.abc import Callable

from textual.widgets import ListItem, ListView, Static

from localr1.errors import StoreError
from localr1.plaintext import printable
from localr1.store import Conversation

PAGE = 50  # conversations read and mounted at once; a history of 10,000 starts with 50
TITLE_CHARS = 80  # about three lines of the sidebar: a pasted title must not push every other one out of view

Fetch = Callable[[Conversation | None, int], list[Conversation]]  # (after, limit) -> the next page


def shown_title(title: str) -> str:
    """A title on one line (runs of blanks as one space), cut at TITLE_CHARS characters with an ellipsis."""
    line = " ".join(title.split())
    return line if len(line) <= TITLE_CHARS else line[:TITLE_CHARS - 1] + "…"


class ConversationItem(ListItem):
    """One conversation in the sidebar."""

    def __init__(self, conversation: Conversation) -> None:
        super().__init__(Static(printable(shown_title(conversation.title), limit=None), markup=False))
        self.conversation = conversation


class MoreItem(ListItem):
    """The last row while older conversations exist: reaching it loads the next page."""

    def __init__(self) -> None:
        super().__init__(Static("more…", markup=False), classes="more")


class Sidebar(ListView):
    """Conversations, most recent first; select one to open it. More load as the list scrolls to its end."""

    def __init__(self, fetch: Fetch) -> None:
        super().__init__(id="sidebar")
        self.fetch = fetch
        self._last: Conversation | None = None
        self._more: MoreItem | None = None
        self._loading = False

    @property
    def conversations(self) -> list[Conversation]:
        """The conversations listed so far."""
        return [item.conversation for item in self.children if isinstance(item, ConversationItem)]

    async def reload(self, current: int | None) -> None:
        """Show the first page again and highlight the current conversation (if it is listed)."""
        page = self.fetch(None, PAGE + 1)
        self._last, self._more = None, None
        await self.clear()
        await self._add(page)
        for index, conversation in enumerate(self.conversations):
            if conversation.id == current:
                self.index = index

    async def load_more(self) -> None:
        """Append the next page (the highlighted row stays where it is)."""
        if self._more is None or self._loading:
            return
        self._loading = True
        try:
            page = self.fetch(self._last, PAGE + 1)
            more, self._more = self._more, None
            await more.remove()
            await self._add(page)
        except StoreError as exc:
            self.app.notify(f"Could not list more conversations: {exc}", severity="error")
        finally:
            self._loading = False

    async def _add(self, page: list[Conversation]) -> None:
        items: list[ListItem] = [ConversationItem(c) for c in page[:PAGE]]
        if page[:PAGE]:
            self._last = page[:PAGE][-1]
        if len(page) > PAGE:
            self._more = MoreItem()
            items.append(self._more)
        await self.extend(items)

    async def on_list_view_highlighted(self, event: ListView.Highlighted) -> None:
        """Reaching the last row by keyboard loads more."""
        if event.item is not None and event.item is self._more:
            await self.load_more()

    async def on_list_view_selected(self, event: ListView.Selected) -> None:
        """Choosing the last row loads more (it opens nothing)."""
        if event.item is self._more:
            event.stop()
            await self.load_more()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._more is not None and new_value >= self.max_scroll_y - self.size.height:
            self.call_later(self.load_more)
