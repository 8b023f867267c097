"""The chat controller: sends prompts, streams answers into views, saves them as they arrive."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from localr1.budget import check_loop_mode, parse_budget
from localr1.engine.params import SamplingParams
from localr1.engine.port import ChatEngine
from localr1.engine.thinking import ThinkingControl
from localr1.errors import LocalR1Error, StoreError
from localr1.presets import apply_preset, last_boxed
from localr1.settings import Settings
from localr1.store import ConversationStore
from localr1.tui import gc_policy
from localr1.tui.generation import (
    MAX_CHARS_PER_REFRESH,
    ContextNotice,
    GenerationDone,
    GenerationFailed,
    PromptTrimmed,
    StreamBatch,
    StreamBuffer,
    refresh_interval,
    run_generation,
)
from localr1.tui.model_slot import ModelSlot
from localr1.tui.pager import TranscriptPager
from localr1.tui.session import ChatSession, Turn
from localr1.tui.widgets.message_view import MessageView
from localr1.tui.widgets.status_bar import StatusBar
from localr1.tui.widgets.transcript import Transcript
from localr1.tui.widgets.welcome import Welcome

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel
    from textual.timer import Timer

CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)


def stats_line(stats: dict[str, Any]) -> str:
    """A short summary under an answer, with what ended the thinking and any loop."""
    try:
        line = (f"{stats['generated_tokens']} tokens · {float(stats['decode_tokens_per_s']):.1f} tok/s · "
                f"ttft {float(stats['time_to_first_token_s']):.2f}s")
    except (KeyError, TypeError, ValueError):
        return ""
    return "  ".join([line, *reasoning_notices(stats)])


def thinking_control(settings: Settings, budget: str | None = None) -> ThinkingControl:
    """The reasoning controls from the settings, with a conversation's own budget when it has one."""
    tokens, seconds = parse_budget(settings.think_budget if budget is None else budget)
    mode = check_loop_mode(settings.loop_guard)
    return ThinkingControl(budget_tokens=tokens, budget_seconds=seconds, loop_guard=mode)


def reasoning_notices(stats: dict[str, Any]) -> list[str]:
    """'thinking ended by the budget' and 'loop detected after N tokens', when they happened."""
    notices = []
    ended = stats.get("thinking_ended_by")
    if ended in ENDED_BY:
        notices.append(f"⏱ {ENDED_BY[ended]} after {stats.get('thinking_tokens', 0)} tokens")
    if stats.get("loop_detected_after") is not None:
        what = "answer stopped" if stats.get("stop_reason") == "repetition" else "noted"
        notices.append(f"↻ loop detected after {stats['loop_detected_after']} tokens ({what})")
    return notices


ENDED_BY = {"budget": "thinking ended by the budget", "answer_now": "thinking ended: answer now",
            "loop": "thinking ended: it went in a loop"}


class Notify(Protocol):
    """Shows the user a one-line notification."""

    def __call__(self, message: str, *, severity: SeverityLevel = "information", timeout: float | None = None) -> None:
        """Show `message`."""



class ChatController:
    """Owns the open conversation's views and the generation in flight.

    It is handed what it uses (the store, the transcript and status bar, the model slot, the settings,
    a way to notify and to say the conversation list changed), never the app itself.
    """

    def __init__(
        self,
        *,
        store: ConversationStore,
        transcript: Transcript,
        status_bar: StatusBar,
        models: ModelSlot,
        settings: Callable[[], Settings],
        notify: Notify,
        conversations_changed: Callable[[], Awaitable[None]],
        clock: Callable[[], float],
        streaming_changed: Callable[[bool], None] = lambda streaming: None,
    ) -> None:
        self.transcript = transcript
        self.streaming_changed = streaming_changed  # told when an answer starts and stops streaming
        self.status_bar = status_bar
        self.models = models
        self.settings = settings
        self.notify = notify
        self.conversations_changed = conversations_changed
        self.clock = clock  # for what is displayed (thinking time, speed) and timed saves; tests step it
        self.session = ChatSession(store, clock)  # the same clock times the saves while streaming
        self.pager = TranscriptPager(self.session, transcript, busy=lambda: self.generating,
                                     notify=lambda text: notify(text, severity="error"))
        self.generating = False
        self._turn: Turn | None = None
        self._view: MessageView | None = None
        self._user_view: MessageView | None = None
        self._started = 0.0
        self._thinking_tokens = 0
        self._answer_tokens = 0
        self._first_token_at: float | None = None
        self._tokens_at_first = 0
        self._buffer: StreamBuffer | None = None
        self._refresh: Timer | None = None
        self._outcome: GenerationDone | GenerationFailed | None = None
        self._stop = threading.Event()
        self._context_used = 0
        self._preset = "plain"
        self.facts: dict[str, Any] | None = None  # the loaded model's describe()
        self.thinking_live = False  # the reply in flight is thinking now (answer-now applies)

    # model facts
    def show_model(self, engine: ChatEngine) -> None:
        """Model name (the registry's when known) and quant in the status bar; the welcome says which."""
        facts = engine.describe()
        self.facts = facts
        name = facts.get("display_name") or facts.get("model") or "?"
        label = f"{name} · {facts.get('quant') or '?'}"
        plan = facts.get("plan")
        if isinstance(plan, dict):  # where the planner put the layers (the context is on the right: ctx used/size)
            label += f" · {plan.get('device_split') or '?'}"
        self.status_bar.set_model(label)
        self.status_bar.set_context(self._context_used, engine.context_size)
        welcome = self._welcome()
        if welcome is not None:
            self.transcript.call_later(welcome.show_model, facts)

    def _welcome(self) -> Welcome | None:
        found = list(self.transcript.query(Welcome))
        return found[0] if found else None

    async def show_welcome(self) -> None:
        """An empty conversation shows the welcome."""
        if self._welcome() is None and not self.transcript.views:
            await self.transcript.mount(Welcome(self.facts))

    async def _hide_welcome(self) -> None:
        welcome = self._welcome()
        if welcome is not None:
            await welcome.remove()

    # conversations
    async def new(self) -> None:
        """Clear the transcript for a new conversation."""
        self._context_used = 0
        await self.pager.clear()
        await self.show_welcome()
        gc_policy.collect_soon(self.transcript, lambda: self.generating)

    async def open(self, conversation_id: int, around: int | None = None) -> None:
        """Show a stored conversation: its newest messages, or those around message `around` (a search hit)."""
        if around is None:
            await self.pager.show_newest(conversation_id)
        else:
            await self.pager.show_around(conversation_id, around)
        await self.show_welcome()
        gc_policy.collect_soon(self.transcript, lambda: self.generating)

    # sending
    async def send(self, text: str) -> bool:
        """Send a prompt; returns False when it was not sent (empty, busy, no model)."""
        if not text.strip():
            return False
        if self.generating:
            self.notify("Still answering: Esc stops it", severity="warning")
            return False
        if self.models.loading is not None and self.models.engine is not None:
            self.notify(f"Loading {Path(self.models.loading).name}: send again in a moment", severity="warning")
            return False
        if self.models.engine is None:
            self.notify("No model is loaded yet: wait for it, or press F3 to choose one", severity="error")
            return False
        model = self.settings().model
        await self.pager.ensure_newest()
        try:
            turn = self.session.add_user(text, model)
        except StoreError as exc:
            self.notify(f"Message not sent: {exc}", severity="error", timeout=15)
            return False
        await self._hide_welcome()
        self._user_view = await self.pager.append(MessageView("user", text, message_id=turn.id))
        await self.conversations_changed()
        await self._generate()
        return True

    async def _generate(self) -> None:
        engine = self.models.engine
        assert engine is not None
        try:
            self._turn = self.session.start_assistant(self.settings().model)
        except StoreError as exc:
            self.notify(f"Cannot answer: {exc}", severity="error", timeout=15)
            return
        self._view = await self.pager.append(MessageView("assistant", status="streaming", message_id=self._turn.id))
        self.generating = True
        self._started = self.clock()
        self._thinking_tokens = self._answer_tokens = 0
        self._first_token_at = None
        self.transcript.anchor()
        sampling = self._sampling(engine)
        messages = self.session.engine_messages()  # the empty streaming turn is left out
        settings = self.settings()
        conversation = self.session.conversation_id
        budget = self.session.store.think_budget(conversation) if conversation is not None else None
        try:
            control = thinking_control(settings, budget)
        except LocalR1Error as exc:  # a stored budget this version cannot read: the default one
            self.notify(f"This conversation's thinking budget is unusable ({exc}); using the default",
                        severity="warning")
            control = thinking_control(settings)
        if messages and messages[-1].role == "user":
            messages[-1] = replace(messages[-1], content=apply_preset(messages[-1].content, settings.preset))
        self._preset = settings.preset
        self.thinking_live = False
        buffer = self._buffer = StreamBuffer()
        stop = self._stop = threading.Event()
        self._refresh = self.transcript.set_interval(refresh_interval(engine.load_params), self._drain)
        self.streaming_changed(True)
        target = self.transcript  # its messages bubble up to the app, which routes them back here

        def work() -> None:
            run_generation(target, engine, messages, sampling, buffer, stop=stop, thinking=control)

        target.run_worker(work, thread=True, exclusive=True, group="generation", exit_on_error=False)

    async def _drain(self) -> None:
        """Timer tick: show the next slice of buffered text; finish once the model is done and all is shown."""
        batch = self._buffer.drain(MAX_CHARS_PER_REFRESH) if self._buffer is not None else None
        if batch is not None:
            # One frame per tick: without the batch, the labels and the Markdown's new blocks were laid
            # out and drawn in two or three screen updates, each holding the GIL the model's thread needs.
            with self.transcript.app.batch_update():
                await self.on_batch(batch)
        elif self._outcome is not None:
            outcome, self._outcome = self._outcome, None
            await self._end_stream()
            if isinstance(outcome, GenerationDone):
                await self._finish(outcome)
            else:
                await self._fail(outcome)

    async def _end_stream(self) -> None:
        """Stop the refresh timer; close engines that were replaced while this answer ran."""
        if self._refresh is not None:
            self._refresh.stop()
            self._refresh = None
            self.streaming_changed(False)
        self._buffer = None
        self.models.close_retired()

    def _sampling(self, engine: ChatEngine) -> SamplingParams:
        overrides = {k: v for k, v in self.settings().sampling_overrides().items() if v is not None}
        return replace(engine.sampling, **overrides)

    def stop(self) -> None:
        """Ask the engine to stop; the partial answer is kept and marked as stopped."""
        if self.generating and self.models.engine is not None:
            self._stop.set()  # seen by the worker even if the engine had not started yet
            self.models.engine.cancel()

    def answer_now(self) -> bool:
        """End the thinking now and let the model answer; False when nothing is thinking."""
        if not (self.generating and self.thinking_live and self.models.engine is not None):
            return False
        self.models.engine.answer_now()
        return True

    def save_on_exit(self) -> None:
        """The app is closing: save all text received so far (shown or still buffered) and stop.

        A finished answer not yet shown is saved as finished; one still streaming as stopped.
        """
        turn, outcome, buffer = self._turn, self._outcome, self._buffer
        if not self.generating or turn is None:
            return
        self.stop()
        try:
            if isinstance(outcome, GenerationDone):
                self.session.finish(turn, outcome.finished, outcome.finished.error)
                return
            while buffer is not None and (batch := buffer.drain(sys.maxsize)) is not None:
                turn.thinking += batch.thinking
                turn.content += batch.answer
            self.session.finish(turn, None, None, status="stopped")
        except StoreError:
            pass  # nothing can be shown any more; the row stays 'streaming' and reads as interrupted
        finally:
            self.generating = False
            self._turn = self._view = self._user_view = None  # a view left behind is never kept alive

    # worker messages
    async def on_batch(self, batch: StreamBatch) -> None:
        """Show and (at most twice a second) save new text."""
        if self._turn is None or self._view is None:
            return
        self.session.stream(self._turn, batch.thinking, batch.answer)
        self._thinking_tokens += batch.thinking_tokens
        self._answer_tokens += batch.answer_tokens
        now = self.clock()
        if self._first_token_at is None:
            self._first_token_at = now
            self._tokens_at_first = self._thinking_tokens + self._answer_tokens
        await self._view.append(batch.thinking, batch.answer)
        self.thinking_live = self._view.thinking.live
        if self._view.thinking.live or (batch.answer and self._view.thinking.tokens == 0 and self._thinking_tokens):
            thought_s = now - (self._first_token_at or now)
            speed = (self._thinking_tokens - self._tokens_at_first) / thought_s if thought_s > 0 else None
            self._view.thinking.update_label(self._thinking_tokens, now - self._started, speed)
        elapsed = now - self._first_token_at
        tokens = self._thinking_tokens + self._answer_tokens
        if elapsed > 0:
            self.status_bar.set_speed((tokens - self._tokens_at_first) / elapsed, None)

    async def on_done(self, done: GenerationDone) -> None:
        """The model finished; the answer is finalised once the UI has shown all of it."""
        self._outcome = done

    async def on_failed(self, failed: GenerationFailed) -> None:
        """The request failed; reported once what arrived before is shown."""
        self._outcome = failed

    async def _finish(self, done: GenerationDone) -> None:
        """Final render, final save, stats in the status bar."""
        turn, view = self._turn, self._view
        self.generating = False
        if turn is None or view is None:
            return
        final = done.finished
        try:
            status = self.session.finish(turn, final, final.error)
        except StoreError as exc:
            status = turn.status
            self.notify(f"The answer is shown but could not be saved: {exc}", severity="error", timeout=15)
        await view.finish(final.answer, final.thinking)
        if view.thinking.text and not view.thinking.tokens:
            view.thinking.update_label(self._thinking_tokens, self.clock() - self._started)
        stats = final.stats
        self.thinking_live = False
        boxed = last_boxed(final.answer) if self._preset == "math" else None
        footer = f"error: {final.error}" if final.error else stats_line(stats.__dict__)
        view.set_status(status, f"final answer: {boxed}  {footer}" if boxed is not None else footer)
        self.status_bar.set_speed(stats.decode_tokens_per_s, stats.time_to_first_token_s)
        engine = self.models.engine
        self._context_used = stats.prompt_tokens + stats.generated_tokens
        if engine is not None:
            self.status_bar.set_context(self._context_used, engine.context_size)
        if final.error:
            self.notify(final.error, severity="error")
        self._turn = self._view = self._user_view = None  # a view left behind is never kept alive
        gc_policy.collect_soon(self.transcript, lambda: self.generating)

    async def _fail(self, failed: GenerationFailed) -> None:
        """The request never produced an answer: say why, keep the user's message."""
        turn, view = self._turn, self._view
        self.generating = False
        self.notify(failed.error, severity="error", timeout=10)
        if turn is not None and view is not None:
            try:
                self.session.finish(turn, None, failed.error)
            except StoreError as exc:
                self.notify(f"Not saved: {exc}", severity="error", timeout=15)
            view.set_status("error", f"error: {failed.error}")
        self._turn = self._view = self._user_view = None  # a view left behind is never kept alive

    async def on_trimmed(self, trimmed: PromptTrimmed) -> None:
        """A pasted message was too long for the context: show what was kept."""
        user_turns = [t for t in self.session.turns if t.role == "user"]
        if user_turns:
            self.session.replace_user_text(user_turns[-1], trimmed.text)
        if self._user_view is not None:
            await self._user_view.set_content(trimmed.text)
            self._user_view.set_status("trimmed", f"trimmed to fit the context: kept {trimmed.kept_tokens} of "
                                                  f"{trimmed.total_tokens} tokens")
        self.notify(f"Your message was {trimmed.total_tokens} tokens; the first {trimmed.kept_tokens} were "
                        "kept to fit the context.", severity="warning", timeout=10)

    def on_context_notice(self, notice: ContextNotice) -> None:
        """Older turns were left out of the prompt."""
        self.notify(f"Left the {notice.dropped} oldest messages out of the prompt to fit the context.",
                        severity="information")

    # regenerate and edit
    async def regenerate(self) -> None:
        """Drop the last answer and generate it again."""
        if self.generating or self.models.engine is None or self.models.loading is not None:
            return
        await self.pager.ensure_newest()
        try:
            turn = self.session.pop_last_assistant()
        except StoreError as exc:
            self.notify(f"Cannot regenerate: {exc}", severity="error", timeout=15)
            return
        if turn is None:
            self.notify("No answer to regenerate", severity="warning")
            return
        views = self.transcript.views
        if views and views[-1].message_id == turn.id:
            await views[-1].remove()
        self._user_view = self.transcript.views[-1] if self.transcript.views else None
        await self._generate()

    async def take_last_user_message(self) -> str | None:
        """Remove the last exchange and return the user's text for editing."""
        if self.generating:
            return None
        await self.pager.ensure_newest()
        try:
            turn = self.session.pop_last_exchange()
        except StoreError as exc:
            self.notify(f"Cannot edit: {exc}", severity="error", timeout=15)
            return None
        if turn is None:
            self.notify("No message to edit", severity="warning")
            return None
        for view in self.transcript.views[-2:]:
            if view.message_id is not None and view.message_id >= turn.id:
                await view.remove()
        return turn.content

    # reading
    def last_answer(self) -> str | None:
        """Text of the last assistant answer."""
        for turn in self.session.newest_first():
            if turn.role == "assistant" and turn.content:
                return turn.content
        return None

    def last_code_block(self) -> str | None:
        """The last fenced code block in the conversation's answers."""
        for turn in self.session.newest_first():
            blocks = CODE_BLOCK.findall(turn.content)
            if turn.role == "assistant" and blocks:
                return str(blocks[-1]).rstrip("\n")
        return None

    # thinking visibility
    def toggle_thinking(self) -> None:
        """Open every thinking block if any is closed, else close them all."""
        blocks = [v.thinking for v in self.transcript.views if v.thinking.has_class("-has-thinking")]
        open_all = any(b.collapsed for b in blocks)
        for block in blocks:
            block.collapsed = not open_all
