"""The help screen: every key binding, generated from the app's own bindings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

EXTRA_KEYS = [
    ("Enter", "Send the message"),
    ("Ctrl+J / Shift+Enter", "New line in the message"),
    ("c (on a message)", "Copy that message"),
    ("Ctrl+P", "Command palette"),
]


class HelpScreen(ModalScreen[None]):
    """Lists the keys; Esc or F1 closes it."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__(id="help")
        self._keys = bindings

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(show_cursor=False, zebra_stripes=True)
        table.add_columns("key", "action")
        for key, action in EXTRA_KEYS:
            table.add_row(key, action)
        for binding in self._keys:
            if binding.description:
                keys = " / ".join(k.strip().replace("ctrl+", "Ctrl+").upper() if len(k.strip()) <= 3
                                  else k.strip().replace("ctrl+", "Ctrl+").capitalize()
                                  for k in binding.key.split(","))
                table.add_row(keys, binding.description)
        with Vertical(classes="dialog"):
            yield Static("localr1 — keys", classes="dialog-title")
            yield table
            yield Static("Esc closes this screen", classes="dialog-hint")

    def action_dismiss(self) -> None:  # type: ignore[override]
        """Close the screen."""
        self.dismiss(None)
