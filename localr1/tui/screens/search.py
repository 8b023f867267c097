"""Full-text search over all conversations."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from localr1.errors import StoreError
from localr1.plaintext import printable
from localr1.store import ConversationStore, SearchHit


def hit_text(hit: SearchHit) -> Text:
    """Title and snippet as plain text, with the store's match spans styled."""
    text = Text.assemble((printable(hit.conversation_title, limit=None), "bold"), ": ")
    at = 0  # pieces made printable one by one, so the match spans still fall on the same characters
    for start, end in sorted(hit.highlights):
        if start < at:
            continue
        text.append(printable(hit.snippet[at:start], limit=None))
        text.append(printable(hit.snippet[start:end], limit=None), "reverse")
        at = end
    text.append(printable(hit.snippet[at:], limit=None))
    return text


class SearchScreen(ModalScreen[SearchHit | None]):
    """Type to search; Enter on a result opens its conversation at that message."""

    BINDINGS = [Binding("escape", "cancel", "Close")]

    def __init__(self, store: ConversationStore) -> None:
        super().__init__(id="search")
        self._store = store
        self.hits: list[SearchHit] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Search conversations", classes="dialog-title")
            yield Input(placeholder="words to find", id="search-input")
            yield OptionList(id="search-results", markup=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        """Search as the user types."""
        try:
            self.hits = self._store.search(event.value)
        except StoreError as exc:
            self.hits = []
            self.app.notify(f"Search failed: {exc}", severity="error")
        results = self.query_one(OptionList)
        results.clear_options()
        results.add_options([Option(hit_text(hit), id=str(i)) for i, hit in enumerate(self.hits)])

    def on_input_submitted(self) -> None:
        """Enter in the box opens the first result."""
        if self.hits:
            self.dismiss(self.hits[0])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Open the chosen result."""
        self.dismiss(self.hits[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        """Close without opening anything."""
        self.dismiss(None)
