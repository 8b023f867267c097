"""The chat app: layout, key bindings, and routing of user actions and worker messages."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.widgets import ListView

from localr1.budget import parse_budget
from localr1.engine.params import LoadRequest
from localr1.engine.port import ChatEngine, EngineFactory
from localr1.errors import LocalR1Error, StoreError
from localr1.paths import data_dir
from localr1.plaintext import printable
from localr1.registry import discovered_models, installed_models
from localr1.settings import Settings, save_settings
from localr1.store import ConversationStore, SearchHit
from localr1.store.export import export_conversation
from localr1.tui import activity, gc_policy
from localr1.tui.chat import ChatController
from localr1.tui.generation import ContextNotice, GenerationDone, GenerationFailed, PromptTrimmed, SlowNotice
from localr1.tui.model_slot import ModelSlot
from localr1.tui.monitor import SystemMonitor
from localr1.tui.screens.help import HelpScreen
from localr1.tui.screens.model_picker import ModelPicker
from localr1.tui.screens.search import SearchScreen
from localr1.tui.screens.settings import SettingsScreen
from localr1.tui.screens.text_prompt import Confirm, TextPrompt
from localr1.tui.streaming_mode import StreamingMode
from localr1.tui.termination import exit_on_sigterm, release_sigterm
from localr1.tui.text import one_line
from localr1.tui.widgets.prompt_input import PromptInput
from localr1.tui.widgets.sidebar import ConversationItem, Sidebar
from localr1.tui.widgets.status_bar import StatusBar
from localr1.tui.widgets.transcript import Transcript

NARROW_WIDTH = 80  # below this the sidebar hides itself


class LocalR1App(App[None]):
    """localr1's terminal chat."""

    CSS_PATH = "styles.tcss"
    TITLE = "localr1"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop generation"),
        Binding("f5", "answer_now", "Answer now (end the thinking)"),
        Binding("ctrl+r", "regenerate", "Regenerate last answer"),
        Binding("ctrl+l", "edit_last", "Edit and resend last message"),
        Binding("ctrl+o", "copy_answer", "Copy last answer"),
        Binding("ctrl+g", "copy_code", "Copy last code block"),
        Binding("ctrl+t", "toggle_thinking", "Show or hide all thinking"),
        Binding("ctrl+n", "new_chat", "New conversation"),
        Binding("f2", "rename", "Rename conversation"),
        Binding("f8", "delete", "Delete conversation"),
        Binding("ctrl+f", "search", "Search conversations"),
        Binding("ctrl+s", "export", "Export conversation (Markdown + JSON)"),
        Binding("f3", "pick_model", "Switch model"),
        Binding("f4", "settings", "Settings"),
        Binding("f9", "conversation_budget", "Thinking budget for this conversation"),
        Binding("ctrl+b", "toggle_sidebar", "Show or hide conversations"),
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(
        self,
        *,
        store: ConversationStore,
        settings: Settings,
        engine_factory: EngineFactory,
        monitor: SystemMonitor | None = None,
        clock: Callable[[], float] = time.monotonic,
        save_settings_to: Path | None = None,
        export_dir: Path | None = None,
        startup_notices: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.store = store
        self.settings = settings
        self.engine_factory = engine_factory
        self.monitor = monitor or SystemMonitor()
        self.save_settings_to = save_settings_to
        self.export_dir = export_dir or data_dir() / "exports"
        self.models = ModelSlot()
        self.startup_notices = list(startup_notices)
        self.sidebar = Sidebar(lambda after, limit: store.conversations(limit=limit, after=after))
        self.transcript = Transcript()
        self.prompt = PromptInput()
        self.status_bar = StatusBar()
        self.streaming = StreamingMode(lambda: self.prompt)
        self.chat = ChatController(
            store=store, transcript=self.transcript, status_bar=self.status_bar, models=self.models,
            settings=lambda: self.settings, notify=self.notify, conversations_changed=self.refresh_sidebar, clock=clock,
            streaming_changed=self.streaming.set,
        )

    @property
    def engine(self) -> ChatEngine | None:
        """The loaded model, if any."""
        return self.models.engine

    @property
    def loading_model(self) -> str | None:
        """The model being loaded, if any."""
        return self.models.loading

    @property
    def retired_engines(self) -> list[ChatEngine]:
        """Engines replaced while an answer still used them."""
        return self.models.retired

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Notifications carry paths and model output: no markup unless asked for, no escape sequences."""
        super().notify(printable(message, limit=None), title=title, severity=severity, timeout=timeout, markup=markup)

    # layout
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield self.sidebar
            with Vertical(id="chat"):
                yield self.transcript
                yield self.prompt
        yield self.status_bar

    async def on_mount(self) -> None:
        """Show the newest conversation, report recoveries, load the model in the background."""
        gc_policy.start()  # before any conversation is shown: those must stay collectable
        try:
            interrupted = self.store.mark_interrupted()
        except StoreError as exc:
            interrupted = 0
            self.notify(str(exc), severity="error", timeout=15)
        if self.store.recovered_from is not None:
            self.notify(f"The conversation database was unreadable and was moved to {self.store.recovered_from}; "
                        "starting with a fresh one.", severity="warning", timeout=15)
        for notice in self.startup_notices:
            self.notify(notice, severity="warning", timeout=15)
        conversations = self.store.conversations(limit=1)
        if conversations:
            await self.chat.open(conversations[0].id)
        else:
            await self.chat.show_welcome()
        if interrupted:
            self.notify(f"{interrupted} answer(s) were interrupted when the app last closed; kept as they were.")
        await self.refresh_sidebar()
        self.refresh_memory()
        self.set_interval(1.0, self.refresh_memory)
        self.set_interval(1.0, lambda: gc_policy.collect_if_due(streaming=self.chat.generating))
        self.apply_thinking_visibility()
        self.apply_width(self.size.width)
        self.prompt.focus()
        exit_on_sigterm(self)
        self.load_model(self.settings.model)

    async def on_event(self, event: events.Event) -> None:
        """Note input, so that full garbage collections wait for a pause (localr1/tui/gc_policy.py)."""
        if isinstance(event, events.Key | events.MouseDown | events.MouseScrollUp | events.MouseScrollDown):
            activity.note_input()
        await super().on_event(event)

    def on_resize(self) -> None:
        """Hide the sidebar on narrow terminals."""
        self.apply_width(self.size.width)

    def apply_width(self, width: int) -> None:
        """Switch the narrow layout on or off."""
        self.set_class(width < NARROW_WIDTH, "-narrow")

    def refresh_memory(self) -> None:
        """Update the RAM (and GPU) figure."""
        engine = self.engine
        reading = self.monitor.read(gpu_offload=bool(engine and engine.load_params.gpu_layers))
        self.status_bar.set_memory(reading.rss_bytes, reading.gpu_bytes)

    def apply_thinking_visibility(self) -> None:
        """Hide thinking blocks entirely when 'show thinking' is off."""
        self.set_class(not self.settings.show_thinking, "-hide-thinking")

    async def refresh_sidebar(self) -> None:
        """Reload the conversation list (its first page)."""
        await self.sidebar.reload(self.chat.session.conversation_id)

    # model loading
    def load_model(self, model: str) -> None:
        """Start loading a model; sending waits until it is loaded (the old one is closed then)."""
        seq = self.models.begin_load(model)
        self.status_bar.set_model(f"loading {Path(model).name}…")
        self._load_model_worker(model, seq)

    @work(thread=True, group="load")
    def _load_model_worker(self, model: str, seq: int) -> None:
        """Load a model in a thread; the app stays usable meanwhile and after a failure."""
        load = LoadRequest(context_size=self.settings.context_size, use_mlock=self.settings.use_mlock)
        try:
            engine = self.engine_factory(model, load, self.settings.sampling_overrides())
        except Exception as exc:  # whatever a load raises (a template syntax error too): one line, app stays up
            self.call_from_thread(self.model_failed, model, one_line(exc), seq)
            return
        self.call_from_thread(self.model_loaded, model, engine, seq)

    def model_loaded(self, model: str, engine: ChatEngine, seq: int) -> None:
        """Show and swap in the new engine, unless a later load superseded this one.

        The model becomes the saved default only once it is shown: a model whose facts cannot be
        displayed must not be the one every later start opens.
        """
        if not self.models.is_current(seq):
            engine.close()
            return
        try:
            self.chat.show_model(engine)
        except Exception as exc:  # describe() reads the model's own metadata
            engine.close()
            self.model_failed(model, one_line(exc), seq)
            return
        self.models.swap(engine, in_use=self.chat.generating)
        plan = engine.describe().get("plan")
        for fallback in plan.get("fallbacks") or () if isinstance(plan, dict) else ():
            self.notify(str(fallback), severity="warning", timeout=15)  # a smaller plan after llama.cpp's refusal
        if self.settings.model != model:
            self.update_settings(Settings(**{**self.settings.__dict__, "model": model}))

    def model_failed(self, model: str, error: str, seq: int) -> None:
        """Report a model that failed to load in one line; keep the previous one if any."""
        if not self.models.is_current(seq):
            return
        self.models.loading = None
        self.notify(f"Could not load {Path(model).name}: {error}", severity="error", timeout=15)
        if self.engine is None:
            self.status_bar.set_model("no model — F3 to choose one")
        else:
            self.chat.show_model(self.engine)

    def update_settings(self, settings: Settings) -> None:
        """Keep and persist new settings."""
        self.settings = settings
        try:
            save_settings(settings, self.save_settings_to)
        except (OSError, LocalR1Error) as exc:
            self.notify(f"Settings not saved: {exc}", severity="error")

    # routing: input and list events
    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        """Send the prompt."""
        if await self.chat.send(event.text):
            self.prompt.clear()

    async def on_list_view_selected(self, event: ListView.Selected) -> None:
        """Open the conversation chosen in the sidebar."""
        if isinstance(event.item, ConversationItem) and not self.chat.generating:
            await self.chat.open(event.item.conversation.id)
            self.prompt.focus()

    # routing: generation worker messages
    async def on_generation_done(self, message: GenerationDone) -> None:
        """The answer is complete (or stopped)."""
        await self.chat.on_done(message)

    async def on_generation_failed(self, message: GenerationFailed) -> None:
        """The request failed before an answer."""
        await self.chat.on_failed(message)

    async def on_prompt_trimmed(self, message: PromptTrimmed) -> None:
        """The newest message was cut to fit."""
        await self.chat.on_trimmed(message)

    def on_context_notice(self, message: ContextNotice) -> None:
        """Older turns were dropped from the prompt."""
        self.chat.on_context_notice(message)

    def on_slow_notice(self, message: SlowNotice) -> None:
        """Decoding runs far below the predicted speed: say why it may be and what helps."""
        self.notify(message.text, severity="warning", timeout=20)

    # routing: actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """App actions wait while a dialog is open (except quit)."""
        return action == "quit" or not isinstance(self.screen, ModalScreen)

    def action_stop(self) -> None:
        """Stop the answer being generated."""
        self.chat.stop()

    def action_answer_now(self) -> None:
        """End the model's thinking and let it answer now."""
        if self.chat.answer_now():
            self.notify("Answering now: the thinking so far is kept")
        elif self.chat.generating:
            self.notify("The model is not thinking now (answer-now applies while it thinks)", severity="warning")

    def action_conversation_budget(self) -> None:
        """Set this conversation's own thinking budget (empty: the one in settings)."""
        conversation_id = self.chat.session.conversation_id
        if conversation_id is None:
            self.notify("Send a message first: the budget belongs to a conversation", severity="warning")
            return
        current = self.store.think_budget(conversation_id) or ""

        def done(text: str | None) -> None:
            if text is None:
                return
            try:
                parse_budget(text)
                self.store.set_think_budget(conversation_id, text.strip() or None)
            except LocalR1Error as exc:
                self.notify(f"Budget not set: {exc}", severity="error", timeout=10)
                return
            self.notify(f"Thinking budget for this conversation: {text.strip() or 'as in settings'}")

        self.push_screen(TextPrompt("Thinking budget (tokens like 2000, or time like 90s; empty: as in settings)",
                                    current), done)

    async def action_regenerate(self) -> None:
        """Generate the last answer again."""
        await self.chat.regenerate()

    async def action_edit_last(self) -> None:
        """Put the last user message back in the input, removing it and its answer."""
        text = await self.chat.take_last_user_message()
        if text is not None:
            self.prompt.text = text
            self.prompt.focus()

    def action_copy_answer(self) -> None:
        """Copy the last answer."""
        self._copy(self.chat.last_answer(), "Last answer")

    def action_copy_code(self) -> None:
        """Copy the last code block of the conversation."""
        self._copy(self.chat.last_code_block(), "Last code block")

    def _copy(self, text: str | None, what: str) -> None:
        if not text:
            self.notify(f"{what}: nothing to copy", severity="warning")
            return
        self.copy_to_clipboard(text)
        self.notify(f"{what} copied to the clipboard")

    def action_toggle_thinking(self) -> None:
        """Open or close every thinking block."""
        self.chat.toggle_thinking()

    async def action_new_chat(self) -> None:
        """Start a new conversation."""
        if not self.chat.generating:
            await self.chat.new()
            await self.refresh_sidebar()
            self.prompt.focus()

    async def action_rename(self) -> None:
        """Rename the current conversation."""
        conversation_id = self.chat.session.conversation_id
        current = self.store.conversation(conversation_id) if conversation_id else None
        if current is None:
            self.notify("Nothing to rename yet: send a message first", severity="warning")
            return

        async def done(title: str | None) -> None:
            if title:
                try:
                    self.store.rename_conversation(current.id, title)
                except StoreError as exc:
                    self.notify(f"Not renamed: {exc}", severity="error", timeout=15)
                await self.refresh_sidebar()

        self.push_screen(TextPrompt("Rename conversation", current.title), done)

    async def action_delete(self) -> None:
        """Delete the current conversation after a confirmation."""
        conversation_id = self.chat.session.conversation_id
        if conversation_id is None or self.chat.generating:
            return

        async def done(yes: bool | None) -> None:
            if yes:
                try:
                    self.store.delete_conversation(conversation_id)
                except StoreError as exc:
                    self.notify(f"Not deleted: {exc}", severity="error", timeout=15)
                    return
                remaining = self.store.conversations(limit=1)
                if remaining:
                    await self.chat.open(remaining[0].id)
                else:
                    await self.chat.new()
                await self.refresh_sidebar()

        self.push_screen(Confirm("Delete this conversation? This cannot be undone."), done)

    def action_search(self) -> None:
        """Search all conversations."""

        async def done(hit: SearchHit | None) -> None:
            if hit is not None and not self.chat.generating:
                await self.chat.open(hit.conversation_id, around=hit.message_id)
                await self.refresh_sidebar()

        self.push_screen(SearchScreen(self.store), done)

    def action_export(self) -> None:
        """Write the conversation as Markdown and JSON."""
        conversation_id = self.chat.session.conversation_id
        if conversation_id is None:
            self.notify("Nothing to export yet", severity="warning")
            return
        try:
            md, js = export_conversation(self.store, conversation_id, self.export_dir)
        except (OSError, LocalR1Error) as exc:
            self.notify(f"Export failed: {exc}", severity="error")
            return
        self.notify(f"Exported to {md} and {js.name}")

    def action_pick_model(self) -> None:
        """Choose another model, installed or found in other tools' folders (not while one answers: it is in use)."""
        if self.chat.generating:
            self.notify("Wait for the answer to finish (Esc stops it), then switch models", severity="warning")
            return
        if self.loading_model is not None:
            self.notify(f"Still loading {Path(self.loading_model).name}", severity="warning")
            return

        def done(model: str | None) -> None:
            if model and not self.chat.generating:
                self.load_model(model)

        self.push_screen(ModelPicker(installed_models(), self.settings.model, discover=discovered_models), done)

    def action_settings(self) -> None:
        """Edit and save settings."""

        def done(new: Settings | None) -> None:
            if new is None:
                return
            reload = new.context_size != self.settings.context_size or (
                new.sampling_overrides() != self.settings.sampling_overrides()
            )
            self.update_settings(new)
            self.apply_thinking_visibility()
            if reload and not self.chat.generating:
                self.load_model(new.model)

        self.push_screen(SettingsScreen(self.settings), done)

    def action_toggle_sidebar(self) -> None:
        """Show or hide the conversation list."""
        self.sidebar.display = not self.sidebar.display

    def action_help(self) -> None:
        """Show the keys."""
        self.push_screen(HelpScreen([b for b in self.BINDINGS if isinstance(b, Binding)]))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action in the command palette too."""
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and binding.action != "quit":
                yield SystemCommand(binding.description, f"key: {binding.key}", self._runner(binding.action))

    def _runner(self, action: str) -> Callable[[], Any]:
        async def run() -> None:
            await self.run_action(action)

        return run

    async def on_unmount(self) -> None:
        """Save what a streaming answer received so far, stop it, and free the model on exit."""
        gc_policy.stop()
        release_sigterm()
        self.streaming.restore()
        if self.chat.generating:
            self.chat.save_on_exit()  # the worker thread still uses the model: let process exit free it
        elif self.engine is not None:
            self.engine.close()
