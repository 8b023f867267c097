"""Pick one of the installed models (the demo included)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from localr1.registry import InstalledModel


class ModelPicker(ModalScreen[str | None]):
    """Lists installed models; Enter loads the highlighted one."""

    BINDINGS = [Binding("escape", "cancel", "Close")]

    def __init__(self, models: list[InstalledModel], current: str | None) -> None:
        super().__init__(id="model-picker")
        self._models = models
        self._current = current

    def compose(self) -> ComposeResult:
        options = [
            Option(f"{'● ' if m.name == self._current else '  '}{m.label}", id=m.name) for m in self._models
        ]
        with Vertical(classes="dialog"):
            yield Static("Choose a model", classes="dialog-title")
            yield OptionList(*options, id="model-options", markup=False)  # file names
            yield Static("Convert a model with 'localr1 convert' to see it here", classes="dialog-hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Load the chosen model."""
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Keep the current model."""
        self.dismiss(None)
