"""The app's main actions against the real engine: llama.cpp on the demo weights with the R1 template."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from localr1.engine.params import LoadRequest
from localr1.engine.port import ChatEngine
from localr1.loader import open_engine
from localr1.paths import models_dir
from localr1.settings import Settings
from localr1.store import ConversationStore
from localr1.tui.app import LocalR1App
from tests.tui.conftest import FakeClock, FixedMonitor
from tests.tui.helpers import notifications, wait_for

pytestmark = pytest.mark.model
SLOW = 240.0  # seconds a step may take on a busy two-core machine


class CountingLoader:
    """The real loader (open_engine), keeping a list of what it loaded."""

    def __init__(self) -> None:
        self.loads: list[tuple[str, LoadRequest]] = []

    def __call__(self, model: str, load: LoadRequest, overrides: dict[str, Any]) -> ChatEngine:
        self.loads.append((model, load))
        return open_engine(model, load, overrides)


async def ask(pilot: Pilot[None], app: LocalR1App, text: str) -> None:
    """Type a prompt, press Enter, wait for the whole answer."""
    turns = len(app.chat.session.turns)
    app.prompt.text = text
    await pilot.press("enter")
    await wait_for(pilot, lambda: len(app.chat.session.turns) == turns + 2 and not app.chat.generating,
                   timeout=SLOW)


def rows(app: LocalR1App) -> list[tuple[str, str, str, str]]:
    cid = app.chat.session.conversation_id
    assert cid is not None
    return [(m.role, m.content, m.thinking, m.status) for m in app.store.messages(cid)]


async def test_main_actions_on_the_real_engine(r1_demo_path: Path, tmp_path: Path) -> None:
    r1 = models_dir() / "r1-demo.gguf"  # in the models folder, so F3 lists it next to the demo
    r1.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(r1_demo_path, r1)
    loader = CountingLoader()
    app = LocalR1App(store=ConversationStore(tmp_path / "c.db"), engine_factory=loader, monitor=FixedMonitor(),
                     settings=Settings(model=str(r1), temperature=0.0, max_tokens=8, context_size=1024),
                     clock=FakeClock(), save_settings_to=tmp_path / "config.toml")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.engine is not None, timeout=SLOW)

        # send: the R1 prompt ends inside <think>, the demo never closes it: 8 tokens of reasoning, no answer
        await ask(pilot, app, "Hi")
        [user, answer] = rows(app)
        assert user == ("user", "Hi", "", "complete")
        assert answer[0] == "assistant" and answer[1] == "" and answer[2].strip() and answer[3] == "truncated"
        view = app.transcript.views[-1]
        assert view.thinking.text == answer[2] and view.thinking.has_class("-has-thinking")
        assert "still thinking at the token limit, so no answer" in str(view.footer.render())

        # regenerate: greedy, so the same reasoning again, in a new row
        first_id = app.chat.session.turns[-1].id
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.chat.generating and app.chat.session.turns[-1].id != first_id,
                       timeout=SLOW)
        assert rows(app) == [user, answer] and len(app.transcript.views) == 2

        # edit and resend
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: app.prompt.text == "Hi")
        assert app.store.messages(app.chat.session.conversation_id) == []  # type: ignore[arg-type]
        app.prompt.text = "Hello"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.chat.generating and len(app.chat.session.turns) == 2, timeout=SLOW)
        assert [r[:2] for r in rows(app)] == [("user", "Hello"), ("assistant", "")]

        # settings that reload the model: more tokens
        await pilot.press("f4")
        await pilot.pause(0.1)
        app.screen.query_one("#max_tokens").value = "2000"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(loader.loads) == 2 and app.loading_model is None, timeout=SLOW)
        assert app.settings.max_tokens == 2000

        # Esc mid-answer: what arrived is kept, marked stopped
        app.prompt.text = "Write a very long story about a dragon."
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.chat.session.turns) == 4 and len(app.chat.session.turns[-1].thinking) > 0,
                       timeout=SLOW)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.chat.generating, timeout=SLOW)
        stopped = rows(app)[-1]
        assert stopped[3] == "stopped" and stopped[2].strip()
        assert "stopped" in str(app.transcript.views[-1].footer.render())

        # F3: switch to the demo model (a chat model: an answer, no reasoning)
        await pilot.press("f3")
        await pilot.pause(0.2)
        await pilot.press("enter")  # the demo is listed first
        await wait_for(pilot, lambda: len(loader.loads) == 3 and app.loading_model is None, timeout=SLOW)
        assert loader.loads[-1][0] == "demo" and app.settings.model == "demo"
        assert "SmolLM2" in str(app.status_bar.model_label.render()) or "Smollm2" in str(
            app.status_bar.model_label.render())
        await pilot.press("ctrl+n")
        await ask(pilot, app, "What is the capital of France? Answer in one sentence.")
        last = rows(app)[-1]
        assert "Paris" in last[1] and last[2] == "" and last[3] in ("complete", "truncated")
        assert not any("error" in n.lower() for n in notifications(app))
