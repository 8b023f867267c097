"""Settings: sampling, context size and whether thinking is shown; saved to the TOML config."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, Switch

from localr1.errors import ConfigError
from localr1.presets import preset_names
from localr1.settings import Settings

LOOP_GUARD_CHOICES = [("act (end thinking, stop answer)", "act"), ("warn (only say so)", "warn"), ("off", "off")]


def _parse(value: str, kind: type[int] | type[float], name: str) -> int | float | None:
    value = value.strip()
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not '{value}'") from None


class SettingsScreen(ModalScreen[Settings | None]):
    """Edit settings; Save validates, Esc discards."""

    BINDINGS = [Binding("escape", "cancel", "Close"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, settings: Settings) -> None:
        super().__init__(id="settings")
        self._settings = settings

    def compose(self) -> ComposeResult:
        s = self._settings

        def text(value: float | int | None) -> str:
            return "" if value is None else str(value)

        with Vertical(classes="dialog"):
            yield Static("Settings", classes="dialog-title")
            with VerticalScroll(id="settings-scroll"), Grid(id="settings-grid"):
                yield Label("temperature (empty: model default)")
                yield Input(text(s.temperature), id="temperature", type="number")
                yield Label("top_p (empty: model default)")
                yield Input(text(s.top_p), id="top_p", type="number")
                yield Label("max tokens (empty: model default)")
                yield Input(text(s.max_tokens), id="max_tokens", type="integer")
                yield Label("context size (empty: the planner's)")
                yield Input(text(s.context_size), id="context_size", type="integer")
                yield Label("show thinking")
                yield Switch(s.show_thinking, id="show_thinking")
                yield Label("thinking budget (2000 tokens or 90s)")
                yield Input(s.think_budget, id="think_budget", placeholder="unlimited")
                yield Label("loop guard")
                yield Select(LOOP_GUARD_CHOICES, value=s.loop_guard, allow_blank=False, id="loop_guard")
                yield Label("prompt preset")
                yield Select([(name, name) for name in preset_names()], value=s.preset, allow_blank=False,
                             id="preset")
            yield Static("", id="settings-error", markup=False)  # echoes what was typed
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (Ctrl+S)", variant="primary", id="save")
                yield Button("Cancel (Esc)", id="cancel")

    def read(self) -> Settings:
        """Settings from the form; raises ConfigError on a bad value."""
        context = _parse(self.query_one("#context_size", Input).value, int, "context size")
        temperature = _parse(self.query_one("#temperature", Input).value, float, "temperature")
        top_p = _parse(self.query_one("#top_p", Input).value, float, "top_p")
        max_tokens = _parse(self.query_one("#max_tokens", Input).value, int, "max tokens")
        return Settings(
            model=self._settings.model,
            temperature=temperature,
            top_p=top_p,
            max_tokens=int(max_tokens) if max_tokens is not None else None,
            context_size=int(context) if context is not None else None,
            show_thinking=self.query_one("#show_thinking", Switch).value,
            use_mlock=self._settings.use_mlock,
            think_budget=self.query_one("#think_budget", Input).value.strip(),
            loop_guard=str(self.query_one("#loop_guard", Select).value),
            preset=str(self.query_one("#preset", Select).value),
        ).validated()

    def action_save(self) -> None:
        """Validate and close with the new settings, or show what is wrong."""
        try:
            self.dismiss(self.read())
        except ConfigError as exc:
            self.query_one("#settings-error", Static).update(f"⚠ {exc}")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Save or cancel."""
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Discard changes."""
        self.dismiss(None)
