"""The chat app at a heavy user's scale: what is mounted and what is read, whatever is stored (issue 12).

Every assertion is about widgets and rows, not time: the timings are in benchmarks/tui_scale.py.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widget import Widget

from localr1.store import ConversationStore
from localr1.tui.app import LocalR1App
from localr1.tui.pager import MAX_MOUNTED, TranscriptPager
from localr1.tui.widgets.sidebar import PAGE, ConversationItem, MoreItem
from tests.store.test_paging import count_message_rows
from tests.tui.conftest import AppMaker
from tests.tui.helpers import ready, screen_text, send, wait_for
from tests.tui.history import add_conversation, add_history

LONG = 1000  # messages in the long conversation
SIZE = (120, 40)
SETTLE_TIMEOUT_S = 60.0


def long_store(tmp_path: Path, messages: int = LONG, *, newer: bool = False) -> tuple[ConversationStore, int]:
    """A store holding one long conversation (and a newer short one when asked)."""
    store = ConversationStore(tmp_path / "conversations.db")
    cid = add_conversation(store, messages, at=1000.0)
    if newer:
        add_conversation(store, 2, title="Newer", long=False, at=2000.0)
    return store, cid


def message_ids(app: LocalR1App) -> list[int]:
    return [v.message_id for v in app.transcript.views if v.message_id is not None]


async def settled(pilot: Pilot[None], pager: TranscriptPager) -> None:
    """Let the pager finish what it does on its own (filling the screen) before looking.

    No time limit that a busy machine reaches: each step waits for Markdown to render (RENDER_WAIT_S at most)."""
    await wait_for(pilot, lambda: pager.idle, timeout=SETTLE_TIMEOUT_S)
    await pilot.pause(0.2)
    await wait_for(pilot, lambda: pager.idle, timeout=SETTLE_TIMEOUT_S)


async def scroll_until(pilot: Pilot[None], app: LocalR1App, *, up: bool, done: Callable[[], bool]) -> None:
    """Scroll to the top (or the end) again and again, letting the pager load, until done() holds."""
    for _ in range(40):
        if done():
            return
        if up:
            app.transcript.scroll_home(animate=False)
        else:
            app.transcript.scroll_end(animate=False)
        await pilot.pause(0.05)
        await settled(pilot, app.chat.pager)
    raise AssertionError("scrolling never got there")


async def test_opening_a_long_conversation_mounts_only_its_newest_messages(make_app: AppMaker, tmp_path: Path) -> None:
    store, _ = long_store(tmp_path)
    rows = count_message_rows(store)
    newest = store.conn.execute("SELECT max(id) FROM messages").fetchone()[0]
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await settled(pilot, app.chat.pager)
        ids = message_ids(app)
        assert ids[-1] == newest and ids == list(range(ids[0], newest + 1))
        assert 2 <= len(ids) <= MAX_MOUNTED
        assert len(app.chat.session.turns) == len(ids)
        assert rows() <= 2 * MAX_MOUNTED  # the store read a page, not 1,000 rows
        assert app.transcript.scroll_y == app.transcript.max_scroll_y > 0  # at the end, which is on screen
        assert app.transcript.older_marker.display and not app.transcript.newer_marker.display


async def test_scrolling_up_loads_older_messages_and_keeps_the_view_in_place(make_app: AppMaker,
                                                                             tmp_path: Path) -> None:
    store, _ = long_store(tmp_path)
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        pager = app.chat.pager
        await settled(pilot, pager)
        first = app.transcript.views[0]
        oldest = first.message_id or 0
        app.transcript.scroll_home(animate=False)
        await wait_for(pilot, lambda: min(message_ids(app)) < oldest)
        await settled(pilot, pager)
        assert first.is_attached and first.virtual_region.y > app.transcript.scroll_y  # still below the top
        assert first.virtual_region.y - app.transcript.scroll_y < app.transcript.size.height  # and on screen
        await scroll_until(pilot, app, up=True, done=lambda: app.chat.session.has_newer)
        ids = message_ids(app)  # kept going up: the far end was unmounted, the count stays bounded
        assert min(ids) < oldest - 5 and len(ids) <= MAX_MOUNTED
        assert app.chat.session.has_newer and app.transcript.newer_marker.display
        assert [t.id for t in app.chat.session.turns] == ids


async def test_scrolling_back_down_reaches_the_end_and_follows_the_stream_again(make_app: AppMaker,
                                                                                tmp_path: Path) -> None:
    store, _ = long_store(tmp_path, 60)
    newest = store.conn.execute("SELECT max(id) FROM messages").fetchone()[0]
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await scroll_until(pilot, app, up=True, done=lambda: newest not in message_ids(app))
        assert not app.transcript.is_anchored  # the end shown is not the conversation's end
        await scroll_until(pilot, app, up=False,
                           done=lambda: message_ids(app)[-1] == newest and app.transcript.is_anchored)
        assert message_ids(app)[-1] == newest and not app.chat.session.has_newer
        assert app.transcript.is_anchored


async def test_sending_from_an_older_window_jumps_to_the_end_and_sends_the_whole_conversation(
        make_app: AppMaker, tmp_path: Path) -> None:
    store, cid = long_store(tmp_path, 40)
    hit = store.messages(cid)[9]
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await app.chat.open(cid, around=hit.id)
        await settled(pilot, app.chat.pager)
        assert app.chat.session.has_newer
        await send(pilot, "One more question")
        ids = message_ids(app)
        rows = store.messages(cid)
        assert ids == [m.id for m in rows[-len(ids):]] and app.transcript.views[-2].content == "One more question"
        sent = app.engine.calls[-1][0]  # type: ignore[union-attr]
        assert len(sent) == 41 and sent[0].content.startswith("Question q0000")


async def test_copy_last_code_block_finds_one_older_than_the_window(make_app: AppMaker, tmp_path: Path) -> None:
    store, cid = long_store(tmp_path, 200)
    for _ in range(20):
        store.add_message(cid, "user", "plain question")
        store.add_message(cid, "assistant", "plain answer without code")
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.chat.last_answer() == "plain answer without code"
        assert app.chat.last_code_block() == ("def solve(n):\n    total = 0\n" + "\n".join(
            f"    total += compute(n, {k})" for k in range(6)) + "\n    return total")


async def test_a_search_hit_deep_in_a_long_conversation_is_shown_and_scrolled_to(make_app: AppMaker,
                                                                                  tmp_path: Path) -> None:
    store, cid = long_store(tmp_path, newer=True)
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+f")
        await pilot.press(*"a0037")
        await wait_for(pilot, lambda: bool(getattr(app.screen, "hits", None)))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat.session.conversation_id == cid and app.chat.pager.hit is not None)
        await settled(pilot, app.chat.pager)
        hit = app.chat.pager.hit
        assert hit is not None and hit.content.startswith("Answer a0037")
        assert "Answer a0037" in screen_text(app)
        assert len(app.transcript.views) <= MAX_MOUNTED


async def test_a_big_history_lists_one_page_and_loads_more_at_its_end(make_app: AppMaker, tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "conversations.db")
    add_history(store, 10_000, messages_each=0)
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        sidebar = app.sidebar
        items = list(sidebar.children)
        assert len(items) == PAGE + 1 and isinstance(items[-1], MoreItem)
        assert [c.title for c in sidebar.conversations[:2]] == ["Conversation c09999", "Conversation c09998"]
        sidebar.focus()
        sidebar.index = PAGE  # the keyboard reaching "more…"
        # (the scroll that shows the row may load one page more once the list's height is laid out: at least)
        await wait_for(pilot, lambda: len(sidebar.conversations) >= 2 * PAGE)
        loaded = len(sidebar.conversations)
        assert loaded % PAGE == 0 and loaded <= 3 * PAGE
        assert isinstance(sidebar.children[-1], MoreItem) and len(sidebar.children) == loaded + 1
        assert sidebar.conversations[PAGE].title == f"Conversation c{9999 - PAGE:05d}"
        highlighted = sidebar.highlighted_child
        assert isinstance(highlighted, ConversationItem) and highlighted.conversation == sidebar.conversations[PAGE]
        sidebar.scroll_end(animate=False)  # the mouse wheel reaching the end
        await wait_for(pilot, lambda: len(sidebar.conversations) >= loaded + PAGE)


async def test_widgets_of_a_conversation_left_are_freed(make_app: AppMaker, tmp_path: Path) -> None:
    store, _ = long_store(tmp_path, 30)
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "A question in the long conversation")  # an answer used to freeze everything alive
        await settled(pilot, app.chat.pager)
        left: list[weakref.ref[Widget]] = [weakref.ref(v) for v in app.transcript.views]
        left += [weakref.ref(v.answer) for v in app.transcript.views]
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: not app.transcript.views, timeout=SETTLE_TIMEOUT_S)
        await pilot.pause(0.2)
        gc.collect()
        assert [r for r in left if r() is not None] == []
