"""SVG snapshots of every screen (pytest-textual-snapshot; update with --snapshot-update)."""

from __future__ import annotations

import threading
from typing import Any

from textual.pilot import Pilot

from localr1.tui.app import LocalR1App
from tests.tui.conftest import AppMaker
from tests.tui.fake_engine import FakeScript
from tests.tui.helpers import ready, send, wait_for

SIZE = (110, 34)
SnapCompare = Any


def _steady(app: LocalR1App) -> None:
    """No blinking cursor: which half of the blink a picture catches depended on the machine's load."""
    app.prompt.cursor_blink = False


def test_main_screen_mid_stream_with_thinking_open(snap_compare: SnapCompare, make_app: AppMaker) -> None:
    hold = threading.Event()
    app = make_app(FakeScript(thinking=["The user asks about primes. ", "2, 3, 5 and 7 ", "are below 10."],
                              hold=hold))

    async def run_before(pilot: Pilot[None]) -> None:
        await ready(pilot)
        _steady(app)
        app.prompt.text = "Which primes are below 10?"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.transcript.views[-1].thinking.text.endswith("below 10."))
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    hold.set()


def test_main_screen_with_thinking_collapsed(snap_compare: SnapCompare, make_app: AppMaker) -> None:
    app = make_app()

    async def run_before(pilot: Pilot[None]) -> None:
        _steady(app)
        await send(pilot, "Show me some Python")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def _screen_after(key: str, app: LocalR1App, typed: str = "") -> Any:
    async def run_before(pilot: Pilot[None]) -> None:
        _steady(app)
        await send(pilot, "Tell me about penguins")
        await pilot.press(key)
        await pilot.pause(0.2)
        if typed:
            await pilot.press(*typed)
            await pilot.pause(0.2)

    return run_before


def test_help_screen(snap_compare: SnapCompare, make_app: AppMaker) -> None:
    app = make_app()
    assert snap_compare(app, terminal_size=(110, 40), run_before=_screen_after("f1", app))


def test_settings_screen(snap_compare: SnapCompare, make_app: AppMaker) -> None:
    app = make_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=_screen_after("f4", app))


def test_search_screen(snap_compare: SnapCompare, make_app: AppMaker) -> None:
    app = make_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=_screen_after("ctrl+f", app, "pengu"))


def test_welcome_on_an_empty_chat(snap_compare: SnapCompare, make_app: AppMaker) -> None:
    app = make_app(FakeScript(thinking=[], name="Smollm2 135M 8k Lc100K Mix1 Ep2",
                              display_name="SmolLM2-135M-Instruct (demo)"))

    async def run_before(pilot: Pilot[None]) -> None:
        await ready(pilot)
        _steady(app)
        await wait_for(pilot, lambda: "Loaded" in str(app.query_one("#welcome").source))  # type: ignore[attr-defined]
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
