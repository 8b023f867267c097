"""Pick a model: the installed ones (the demo included), then GGUFs other tools downloaded, found as `models` finds
them (looked for in a thread: reading headers must not hold the keys)."""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from localr1.discovery import LocalModel
from localr1.errors import LocalR1Error
from localr1.plaintext import printable
from localr1.registry import InstalledModel

HINT = "No R1 model yet? 'localr1 pull r1' downloads the distill that suits this machine"
LOOKING = "Looking for models other tools downloaded (LM Studio, Ollama, the Hugging Face cache)…"

Discover = Callable[[list[InstalledModel]], list[LocalModel]]


def discovered_label(model: LocalModel) -> str:
    """One discovered file: the model it is (or its name), its quant and where it was found."""
    what = model.key or model.name
    return printable(f"{what}  [{model.quant}, found in {model.where}: {model.name}]", limit=200)


class ModelPicker(ModalScreen[str | None]):
    """Lists installed models, then discovered ones (marked); Enter loads the highlighted one."""

    BINDINGS = [Binding("escape", "cancel", "Close")]

    def __init__(self, models: list[InstalledModel], current: str | None, discover: Discover | None = None) -> None:
        super().__init__(id="model-picker")
        self._models = models
        self._current = current
        self._discover = discover

    def _mark(self, name: str) -> str:
        return "● " if name == self._current else "  "

    def compose(self) -> ComposeResult:
        options = [Option(f"{self._mark(m.name)}{printable(m.label, limit=200)}", id=m.name) for m in self._models]
        with Vertical(classes="dialog"):
            yield Static("Choose a model", classes="dialog-title")
            yield OptionList(*options, id="model-options", markup=False)  # file names
            yield Static(LOOKING if self._discover else "", id="model-discovery", classes="dialog-hint", markup=False)
            yield Static(HINT, classes="dialog-hint", markup=False)

    def on_mount(self) -> None:
        if self._discover is not None:
            self._look(self._discover)

    @work(thread=True, exit_on_error=False)
    def _look(self, discover: Discover) -> None:
        try:
            found, note = discover(self._models), ""
        except (LocalR1Error, OSError) as exc:
            found, note = [], f"Could not look for other models: {printable(str(exc))}"
        self.app.call_from_thread(self._show_discovered, found, note)

    def _show_discovered(self, found: list[LocalModel], note: str) -> None:
        if not self.is_mounted:
            return
        listed = self.query_one("#model-options", OptionList)
        taken = {m.name for m in self._models}
        options = [Option(f"{self._mark(str(m.path))}{discovered_label(m)}", id=str(m.path))
                   for m in found if str(m.path) not in taken]
        if options:
            listed.add_options(options)
        status = self.query_one("#model-discovery", Static)
        status.update(note or (f"{len(options)} found elsewhere on this disk (used where they are)" if options
                               else "No models from other tools found"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Load the chosen model."""
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Keep the current model."""
        self.dismiss(None)
