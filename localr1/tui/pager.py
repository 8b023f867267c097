"""Which messages of a conversation are mounted: opening costs what is on screen, not what is stored.

Opening reads the newest FIRST_READ messages and mounts only as many as fill the screen (estimated
from their text), or a page around a search hit. Older and newer messages are read from the store and
mounted SLICE at a time while the view is within a screen of an edge; each slice is a step of its own
on the transcript's message queue, so keys are handled in between. Beyond MAX_MOUNTED the end far
from the view is unmounted and forgotten, so the widgets alive stay bounded whatever the length.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from textual.widget import Widget

from localr1.errors import StoreError
from localr1.tui.activity import quiet_for
from localr1.tui.session import ChatSession, Turn
from localr1.tui.widgets.message_view import MessageView, preview
from localr1.tui.widgets.transcript import Transcript

FIRST_READ = 12  # messages read when a conversation opens; only those that fill the screen are mounted
FILL = 1.5  # screens of text mounted at first
AROUND = 6  # messages read around a search hit
SLICE = 1  # messages mounted per step while scrolling
MAX_MOUNTED = 12  # messages kept mounted (more while they are short: see KEEP_SCREENS)
KEEP_SCREENS = 4  # the far end is unmounted only while this many screens of text stay mounted
RENDER_WAIT_S = 5.0  # longest wait for new views' Markdown before measuring anyway
INPUT_PAUSE_S = 0.15  # a slice is mounted only after this long without a key: typing is never kept waiting
OPEN_SETTLE_S = 1.0  # after opening, the first slice waits this long: people often type straight away


def view_of(turn: Turn) -> MessageView:
    """The widget of a stored message."""
    return MessageView(turn.role, turn.content, turn.thinking, status=turn.status, message_id=turn.id)


def estimated_rows(turn: Turn, width: int) -> int:
    """About how many rows a message takes at `width` columns (header, folded thinking, wrapped text)."""
    width = max(width, 20)
    rows = 3 + (1 if turn.thinking else 0)
    return rows + sum(max(1, -(-len(line) // width)) for line in preview(turn.role, turn.content).splitlines())


async def rendered(views: Sequence[MessageView]) -> None:
    """Wait until the views' Markdown is mounted, so their heights are real."""
    waits = [v.rendered.wait() for v in views if not v.rendered.is_set()]
    if waits:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), RENDER_WAIT_S)


class TranscriptPager:
    """Keeps the session's window of messages and the transcript's widgets the same, and moves them."""

    def __init__(self, session: ChatSession, transcript: Transcript, *, busy: Callable[[], bool],
                 notify: Callable[[str], None]) -> None:
        self.session = session
        self.transcript = transcript
        self.busy = busy  # True while an answer streams into the last view, which must stay mounted
        self.notify = notify
        self.hit: MessageView | None = None  # the search hit last jumped to
        self._loading = False
        self._pending = False
        self._settle_until = 0.0  # monotonic time before which nothing more is mounted (just opened)
        transcript.on_moved = self.schedule

    @property
    def idle(self) -> bool:
        """Nothing is being mounted or waiting to be."""
        return not self._loading and not self._pending

    async def clear(self) -> None:
        """An empty transcript for a new conversation."""
        self.session.new()
        await self._show([])
        self.transcript.anchor()

    async def show_newest(self, conversation_id: int) -> None:
        """Open a conversation at its end: the newest messages that fill the screen, older ones on scrolling up."""
        self.session.open(conversation_id, FIRST_READ)
        width, height = self._screen_size()
        rows, keep = 0, 0
        for turn in reversed(self.session.turns):
            if rows >= height * FILL:
                break
            rows += estimated_rows(turn, width)
            keep += 1
        self.session.forget_oldest(len(self.session.turns) - keep)
        await self._show([view_of(t) for t in self.session.turns])
        self.transcript.anchor()
        self.schedule()

    def _screen_size(self) -> tuple[int, int]:
        t = self.transcript
        if t.size.height:
            return t.size.width - 6, t.size.height  # padding, message border and padding
        return t.app.size.width - 38, t.app.size.height - 5  # not laid out yet: the terminal less the rest

    async def show_around(self, conversation_id: int, message_id: int) -> None:
        """Open a conversation at one message (a search hit), scrolled so that it is at the top."""
        self.session.open(conversation_id, AROUND, around=message_id)
        views = [view_of(t) for t in self.session.turns]
        await self._show(views)
        self.transcript.anchor(False)  # re-anchored when the user scrolls to the real end
        self.hit = next((v for v in views if v.message_id == message_id), None)
        if self.hit is None:
            self.schedule()
            return
        self.hit.add_class("-hit")
        self.transcript.call_later(self._scroll_to_hit, self.hit)

    async def _scroll_to_hit(self, hit: MessageView) -> None:
        await rendered(self.transcript.views)
        self.transcript.call_after_refresh(self._scroll_to_hit_now, hit)

    def _scroll_to_hit_now(self, hit: MessageView) -> None:
        if hit.is_attached:
            self.transcript.scroll_to_widget(hit, animate=False, top=True, immediate=True)
        self.schedule()

    async def ensure_newest(self) -> None:
        """Before anything is added at the end: the window must reach the conversation's end."""
        if self.session.has_newer and self.session.conversation_id is not None:
            await self.show_newest(self.session.conversation_id)

    async def append(self, view: MessageView) -> MessageView:
        """A new message at the end (the window is at the end); the oldest are unmounted past the bound."""
        await self.transcript.add(view)
        await self._trim(oldest=True)
        return view

    async def _show(self, views: list[MessageView]) -> None:
        self.hit = None
        self._settle_until = time.monotonic() + OPEN_SETTLE_S
        await self.transcript.show(views)
        self._mark()

    def _mark(self) -> None:
        self.transcript.mark_edges(self.session.has_older, self.session.has_newer)

    # paging as the view moves
    def schedule(self) -> None:
        """Look at the edges once the screen is laid out (called on every scroll and resize)."""
        if not self._pending and not self._loading and self.transcript.is_attached:
            self._pending = True
            self.transcript.call_after_refresh(self._queue_check)

    def _queue_check(self) -> None:
        # After-refresh callbacks run on the screen's task: the loading runs on the transcript's own.
        # Whether every view's Markdown was mounted is noted now: only then did this refresh lay it out.
        laid_out = all(v.rendered.is_set() for v in self.transcript.views)
        self.transcript.call_later(self._check, laid_out)

    async def _check(self, laid_out: bool) -> None:
        t = self.transcript
        if self._loading or not t.is_attached:
            self._pending = False
            return
        if not laid_out:
            await rendered(t.views)  # heights are not real yet: look again after the next refresh
            self._pending = False
            self.schedule()
            return
        if not all(v.outer_size.height for v in t.views):
            # Not laid out yet (no frame is drawn while the app starts): look again in a moment.
            t.set_timer(INPUT_PAUSE_S, self._retry)
            return
        self._pending = False
        if not self.session.has_newer and not t.is_anchored and t.scroll_y >= t.max_scroll_y:
            t.anchor()  # back at the real end: follow new text again
        margin = max(t.size.height, 1)
        older = self.session.has_older and t.scroll_y <= margin
        newer = self.session.has_newer and t.max_scroll_y - t.scroll_y <= margin
        if (older or newer) and (not quiet_for(INPUT_PAUSE_S) or time.monotonic() < self._settle_until):
            self._pending = True
            t.set_timer(INPUT_PAUSE_S, self._retry)
        elif older or newer:
            await self._load(older=older)

    def _retry(self) -> None:
        self._pending = False
        self.schedule()

    async def _load(self, *, older: bool) -> None:
        """Mount one slice at an edge, keeping what the user looks at where it is on screen."""
        t = self.transcript
        views = t.views
        keep: Widget | None = (views[0] if older else views[-1]) if views else None
        offset = keep.virtual_region.y - t.scroll_y if keep is not None else 0
        following = t.is_anchored and t.scroll_y >= t.max_scroll_y  # at the end, following new text
        self._loading = True
        try:
            turns = self.session.older(SLICE) if older else self.session.newer(SLICE)
        except StoreError as exc:
            self._loading = False
            self.notify(f"Could not read more messages: {exc}")
            return
        new = [view_of(turn) for turn in turns]
        if new:
            await (t.prepend(new) if older else t.extend(new))
            await rendered(new)
        await self._trim(oldest=not older)
        self._mark()
        t.call_after_refresh(self._restore, keep, offset, following)

    def _restore(self, keep: Widget | None, offset: int, following: bool) -> None:
        """Scroll so that the message kept is where it was before the slice went in above it."""
        self._loading = False
        t = self.transcript
        if following:
            t.scroll_end(animate=False, immediate=True)
        elif keep is not None and keep.is_attached:
            # Set directly: scroll_to(release_anchor=False) releases the anchor all the same (Textual 8.2).
            t.scroll_target_y = t.scroll_y = keep.virtual_region.y - offset
        self.schedule()

    def _excess(self, *, oldest: bool) -> int:
        """How many messages at one end can go: beyond MAX_MOUNTED, keeping KEEP_SCREENS of text.

        Textual lays out every mounted widget whenever one off screen changes, so the count is kept
        small; short messages are kept in larger numbers so both edges stay a screen away from the view.
        """
        width, height = self._screen_size()
        turns = self.session.turns if oldest else self.session.turns[::-1]
        rows = sum(estimated_rows(t, width) for t in turns)
        excess = 0
        while len(turns) - excess > MAX_MOUNTED:
            rows -= estimated_rows(turns[excess], width)
            if rows < KEEP_SCREENS * height:
                break
            excess += 1
        return excess

    async def _trim(self, *, oldest: bool) -> None:
        """Unmount the messages at one end beyond what is kept (never the answer being streamed)."""
        views = self.transcript.views
        excess = min(self._excess(oldest=oldest), len(views))
        if excess <= 0:
            return
        if oldest:
            doomed = views[:excess]
            self.session.forget_oldest(excess)
        else:
            if self.busy():
                return  # the streaming answer is at the end: trimmed once it is done
            doomed = views[-excess:]
            self.session.forget_newest(excess)
            self.transcript.anchor(False)  # the end is no longer the conversation's end
        if self.hit in doomed:
            self.hit = None
        await self.transcript.drop(doomed)
        self._mark()
