"""Escape sequences in a prompt, in the model's reasoning or in its answer are shown, never sent to the terminal."""

from __future__ import annotations

import io

from rich.console import Console

from localr1.settings import Settings
from localr1.tui.app import LocalR1App
from tests.tui.conftest import AppMaker
from tests.tui.fake_engine import FakeFactory, FakeScript
from tests.tui.helpers import send, wait_for

ESCAPES = "\x1b]0;pwned\x07\x1b[2J"  # retitle the terminal, clear the screen


async def test_the_transcript_never_paints_escape_sequences(make_app: AppMaker) -> None:
    script = FakeScript(thinking=[f"think {ESCAPES} more"], answer=[f"answer {ESCAPES} more\n"])
    app = make_app(settings=Settings(model="/models/x.gguf"), factory=FakeFactory(script))
    async with app.run_test(size=(160, 30)) as pilot:
        await send(pilot, f"prompt {ESCAPES} more")
        await pilot.pause(0.2)
        # What Textual would write to the terminal: the compositor's full update, rendered as a terminal would get it.
        console = Console(force_terminal=True, width=160, record=True, file=io.StringIO())
        with console.capture() as capture:
            console.print(app.screen._compositor.render_update(full=True))
        painted = capture.get()
        assert "pwned" in painted  # the text is there, shown
        assert "\x1b]0;pwned" not in painted and "\x07" not in painted and "\x1b[2J" not in painted


def _painted(app: LocalR1App) -> str:
    """What Textual would write to the terminal for the whole screen."""
    console = Console(force_terminal=True, width=160, record=True, file=io.StringIO())
    with console.capture() as capture:
        console.print(app.screen._compositor.render_update(full=True))
    return capture.get()


async def test_escapes_split_across_pieces_are_shown_and_plain_text_is_kept(make_app: AppMaker) -> None:
    # ESC at the end of one piece and the rest of its sequence in the next; a one-byte CSI (C1); a newline,
    # a tab, Chinese, an emoji and Hebrew (right to left) that must come through as they are.
    script = FakeScript(thinking=["reason \x1b", "]0;pwned\x07 思考 \x9b31m done"],
                        answer=["first line 中文 😀\n", "second\tline שלום \x1b", "[2J end\n"])
    app = make_app(settings=Settings(model="/models/x.gguf"), factory=FakeFactory(script))
    async with app.run_test(size=(160, 40)) as pilot:
        await send(pilot, "hello")
        await wait_for(pilot, lambda: not app.chat.generating)
        await pilot.press("ctrl+t")  # open the reasoning block
        await pilot.pause(0.2)
        view = app.transcript.views[-1]
        assert view.content == "first line 中文 😀\nsecond\tline שלום \x1b[2J end\n"  # stored as the model wrote it
        assert view.answer.source == "first line 中文 😀\nsecond\tline שלום \\x1b[2J end\n"
        assert view.thinking.text == "reason \x1b]0;pwned\x07 思考 \x9b31m done"
        painted = _painted(app)
        for shown in ("\\x1b]0;pwned\\x07", "\\x9b31m", "\\x1b[2J", "中文", "😀", "שלום", "思考"):
            assert shown in painted, shown
        assert "\x07" not in painted and "\x9b" not in painted and "\x1b]" not in painted and "\x1b[2J" not in painted
        lines = [line for line in painted.splitlines() if "first line" in line or "second" in line]
        assert len(lines) == 2  # the newline still breaks the line


async def test_search_results_show_escape_sequences(make_app: AppMaker) -> None:
    script = FakeScript(thinking=[], answer=["needle \x1b]0;pwned\x07 after\n"])
    app = make_app(settings=Settings(model="/models/x.gguf"), factory=FakeFactory(script))
    async with app.run_test(size=(160, 30)) as pilot:
        await send(pilot, "find \x1b[2J me")
        await wait_for(pilot, lambda: not app.chat.generating)
        await pilot.press("ctrl+f")
        await pilot.pause(0.1)
        for key in "needle":
            await pilot.press(key)
        await pilot.pause(0.3)
        painted = _painted(app)
        assert "needle \\x1b]0;pwned\\x07 after" in painted and "find \\x1b[2J me" in painted
        assert "\x07" not in painted and "\x1b]" not in painted and "\x1b[2J" not in painted
