"""A reply cut by the token limit inside a multi-byte character ends at the last whole one, never in U+FFFD:
`localr1 run` (text and JSON) and the chat app's stored answer, on the real demo model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localr1.loader import open_engine
from localr1.settings import Settings
from localr1.store import ConversationStore
from localr1.tui.app import LocalR1App
from tests.cli_helpers import localr1
from tests.tui.conftest import FakeClock, FixedMonitor
from tests.tui.helpers import wait_for

pytestmark = pytest.mark.model

# Greedy, the demo answers this with star emoji (4 bytes, two tokens each): its 4th token is half of the second star.
EMOJI_PROMPT = "Reply with only emoji: 🙂🙂🙂🙂"
CUT = 4
WHOLE = "🌟"


def test_run_ends_at_the_last_whole_character() -> None:
    done = localr1("run", "-t", "0", "--max-tokens", str(CUT), "--json", EMOJI_PROMPT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["stats"]["generated_tokens"] == CUT and result["truncated"]
    assert result["answer"] == WHOLE
    printed = localr1("run", "-t", "0", "--max-tokens", str(CUT), EMOJI_PROMPT)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == WHOLE + "\n"


async def test_chat_stores_the_last_whole_character(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    app = LocalR1App(store=store, engine_factory=open_engine, monitor=FixedMonitor(), clock=FakeClock(),
                     settings=Settings(model="demo", temperature=0.0, max_tokens=CUT, context_size=1024),
                     save_settings_to=tmp_path / "config.toml")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.engine is not None, timeout=240)
        app.prompt.text = EMOJI_PROMPT
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.chat.session.turns) == 2 and not app.chat.generating, timeout=240)
        await pilot.pause(0.1)
        cid = app.chat.session.conversation_id
        assert cid is not None
        [_, answer] = store.messages(cid)
        assert (answer.content, answer.status) == (WHOLE, "truncated")
        assert app.transcript.views[-1].content == WHOLE
