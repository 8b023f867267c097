"""Escape sequences in a prompt, in the model's reasoning or in its answer are shown, never sent to the terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from localr1.settings import Settings
from tests.tui.conftest import AppMaker
from tests.tui.fake_engine import FakeFactory, FakeScript
from tests.tui.helpers import send

ESCAPES = "\x1b]0;pwned\x07\x1b[2J"  # retitle the terminal, clear the screen


@pytest.mark.xfail(strict=True, reason="the transcript (message views, reasoning block) writes text as given: "
                   "a model's output can hold ESC bytes (a prompt-injected document is enough); fix in the "
                   "widgets that show message text, e.g. localr1.plaintext.printable on each piece")
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
