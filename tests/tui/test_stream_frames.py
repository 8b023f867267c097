"""While an answer streams, the UI thread does as little as it can: it holds the GIL the model's thread needs
between its llama.cpp calls (issue 12: the app decoded at 0.89x `localr1 run`). Counted, not timed."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from textual.screen import Screen

from localr1.tui.app import LocalR1App
from localr1.tui.streaming_mode import STREAMING_SWITCH_INTERVAL_S
from localr1.tui.widgets.document import Document
from tests.tui.conftest import AppMaker, FakeClock
from tests.tui.fake_engine import FakeScript
from tests.tui.helpers import ready, wait_for

PIECES = [f"word{i} " for i in range(12)] + ["\n\n", "Second paragraph ", "grows ", "here."]


class FrameCounter:
    """Counts the screen's layouts (a reflow of every widget) and its paints to the terminal."""

    def __init__(self, screen: Screen[Any]) -> None:
        self.layouts = self.paints = 0
        layout, paint = screen._refresh_layout, screen._compositor_refresh

        def counting_layout(*args: Any, **kwargs: Any) -> None:
            self.layouts += 1
            layout(*args, **kwargs)

        def counting_paint() -> None:
            self.paints += 1
            paint()

        screen._refresh_layout = counting_layout  # type: ignore[method-assign]
        screen._compositor_refresh = counting_paint  # type: ignore[method-assign]


def count_ticks(app: LocalR1App) -> list[int]:
    """How many UI ticks showed new text (the controller's on_batch calls)."""
    ticks = [0]
    on_batch: Callable[..., Any] = app.chat.on_batch

    async def counting(batch: Any) -> None:
        ticks[0] += 1
        await on_batch(batch)

    app.chat.on_batch = counting  # type: ignore[method-assign]
    return ticks


async def settle(pilot: Any, frames: FrameCounter) -> None:
    """Wait until the screen has had no layout for a while (the start-up's and the send's own work is done)."""
    for _ in range(50):
        before = frames.layouts
        await pilot.pause(0.3)
        if frames.layouts == before:
            return
    raise AssertionError("the screen never settled")


async def test_each_tick_of_new_text_is_one_layout_and_one_paint(make_app: AppMaker) -> None:
    clock, pace = FakeClock(), threading.Semaphore(0)
    app = make_app(FakeScript(thinking=[], answer=PIECES, pace=pace), clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.prompt.text = "Question"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat.generating and bool(app.transcript.views))
        view = app.transcript.views[-1]
        frames, ticks = FrameCounter(app.screen), count_ticks(app)
        shown = ""
        for i, piece in enumerate(PIECES):
            clock.advance(0.5)  # the speed figure changes at every tick, its width does not
            pace.release()
            shown += piece
            await wait_for(pilot, lambda text=shown: view.content == text)  # type: ignore[misc]
            if i == 0:  # the first piece mounts the answer's first block and widens the speed figure
                await settle(pilot, frames)
                layouts, paints, ticks[0], blocks = frames.layouts, frames.paints, 0, len(view.answer.children)
            await pilot.pause(0.05)
        assert ticks[0] == len(PIECES) - 1
        # A block a tick mounts is laid out again once mounted, and once more when the "last block" class moves to it.
        extra = 2 * (len(view.answer.children) - blocks)
        # Before: the labels were laid out in one screen update and the Markdown's blocks in the next, and every
        # speed or memory figure relaid the whole screen: two layouts and two paints per tick.
        assert frames.layouts - layouts <= ticks[0] + extra, (frames.layouts - layouts, ticks[0], extra)
        assert frames.paints - paints <= ticks[0] + extra, (frames.paints - paints, ticks[0], extra)
        await wait_for(pilot, lambda: not app.chat.generating)


async def test_figures_of_the_same_width_repaint_without_a_layout(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        bar = app.status_bar  # (the memory figure is the app's own, refreshed every second)
        bar.set_speed(12.5, None)
        bar.set_context(100, 4096)
        frames = FrameCounter(app.screen)
        await settle(pilot, frames)
        layouts = frames.layouts
        bar.set_speed(48.1, None)
        bar.set_context(200, 4096)
        await pilot.pause(0.3)
        assert str(bar.speed_label.render()) == "48.1 tok/s"
        assert str(bar.context_label.render()) == "ctx 200/4.1k"
        assert frames.layouts == layouts and frames.paints >= 1
        bar.set_speed(148.1, None)  # wider: laid out again, so the label is not clipped
        await pilot.pause(0.3)
        assert frames.layouts > layouts
        assert bar.speed_label.size.width == len("148.1 tok/s")


async def test_while_an_answer_streams_the_cursor_stays_lit_and_the_model_waits_less_for_the_gil(
        make_app: AppMaker) -> None:
    hold = threading.Event()
    app = make_app(FakeScript(thinking=[], answer=["One ", "two."], hold=hold, hold_at=1))
    before = sys.getswitchinterval()
    async with app.run_test() as pilot:
        await ready(pilot)
        assert app.prompt.cursor_blink
        app.prompt.text = "Question"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat.generating)
        assert not app.prompt.cursor_blink  # each blink redraws the editor on the UI thread
        assert sys.getswitchinterval() == STREAMING_SWITCH_INTERVAL_S < before
        hold.set()
        await wait_for(pilot, lambda: not app.chat.generating)
        assert app.prompt.cursor_blink and sys.getswitchinterval() == before
        hold.clear()
        app.prompt.text = "Again"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat.generating)
        assert sys.getswitchinterval() == STREAMING_SWITCH_INTERVAL_S
    assert sys.getswitchinterval() == before  # the app closed mid-answer: restored all the same


def test_a_document_builds_one_parser_for_all_its_appends() -> None:
    built: list[object] = []

    def factory() -> Any:
        from markdown_it import MarkdownIt

        parser = MarkdownIt("gfm-like")
        built.append(parser)
        return parser

    doc, other = Document("x", parser_factory=factory), Document("y", parser_factory=factory)
    assert doc._parser_factory is not None and other._parser_factory is not None
    first = doc._parser_factory()  # what Textual calls at every append and update
    assert doc._parser_factory() is first and len(built) == 1
    assert other._parser_factory() is not first  # a parser's linkifier keeps state: never shared between documents
