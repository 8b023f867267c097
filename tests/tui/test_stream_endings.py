"""How an answer ends is kept: quitting mid-stream saves all of it; a token-limit cut says so."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from localr1.store import ConversationStore
from tests.tui.conftest import AppMaker
from tests.tui.fake_engine import FakeEngine, FakeFactory, FakeScript
from tests.tui.helpers import notifications, ready, send, wait_for

THINKING = ["Plan: ", "write a lot."]
PIECES = [f"Paragraph {i:02d}. " + "word " * 200 + "\n\n" for i in range(60)]  # about 61k characters
HOLD_AT = 40


async def test_quitting_mid_answer_saves_every_character_received(make_app: AppMaker, tmp_path: Path) -> None:
    hold = threading.Event()
    app = make_app(FakeScript(thinking=THINKING, answer=PIECES, hold=hold, hold_at=HOLD_AT))
    received = "".join(PIECES[:HOLD_AT])
    try:
        async with app.run_test() as pilot:
            await ready(pilot)
            app.prompt.text = "Write at length"
            await pilot.press("enter")
            engine = app.engine
            assert isinstance(engine, FakeEngine)
            await wait_for(pilot, engine.holding.is_set)
            shown = app.transcript.views[-1].content
            assert len(shown) < len(received)  # the UI is still catching up: part of it is only buffered
            await pilot.press("ctrl+q")
        assert not app.is_running
    finally:
        hold.set()
    store = ConversationStore(tmp_path / "conversations.db")
    answer = store.messages(store.conversations()[0].id)[-1]
    assert answer.content == received and answer.thinking == "".join(THINKING)
    assert answer.status == "stopped"


async def test_quitting_after_the_model_finished_but_before_it_was_shown_saves_it_complete(
        make_app: AppMaker, tmp_path: Path) -> None:
    app = make_app(FakeScript(thinking=THINKING, answer=PIECES))
    async with app.run_test() as pilot:
        await ready(pilot)
        app.prompt.text = "Write at length"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat._outcome is not None)  # finished, not all shown yet
        assert len(app.transcript.views[-1].content) < len("".join(PIECES))
        await pilot.press("ctrl+q")
    store = ConversationStore(tmp_path / "conversations.db")
    answer = store.messages(store.conversations()[0].id)[-1]
    assert answer.content == "".join(PIECES) and answer.status == "complete"


async def test_an_answer_cut_at_the_token_limit_says_so_and_keeps_saying_it(make_app: AppMaker, tmp_path: Path) -> None:
    app = make_app(FakeScript(answer=["The first half of an answer that"], stop="length"))
    async with app.run_test() as pilot:
        await send(pilot, "Explain")
        view = app.transcript.views[-1]
        footer = str(view.footer.render())
        assert "cut off at the token limit — raise max tokens in settings (F4)" in footer
        cid = app.chat.session.conversation_id
        assert app.store.messages(cid)[-1].status == "truncated"  # type: ignore[arg-type]
    conn = sqlite3.connect(tmp_path / "conversations.db")
    assert conn.execute("SELECT content FROM messages WHERE status = 'truncated'").fetchall() == [
        ("The first half of an answer that",)]
    conn.close()
    again = make_app()
    async with again.run_test() as pilot:
        await ready(pilot)
        view = again.transcript.views[-1]
        assert view.status == "truncated" and "cut off at the token limit" in str(view.footer.render())


async def test_thinking_that_used_the_whole_budget_is_shown_as_no_answer(make_app: AppMaker, tmp_path: Path) -> None:
    app = make_app(FakeScript(thinking=["Hmm, ", "let me think more..."], answer=[], stop="length"))
    async with app.run_test() as pilot:
        await send(pilot, "Hard question")
        view = app.transcript.views[-1]
        footer = str(view.footer.render())
        assert "still thinking at the token limit, so no answer" in footer and "(F4)" in footer
        assert view.thinking.text == "Hmm, let me think more..."
    again = make_app()
    async with again.run_test() as pilot:
        await ready(pilot)
        assert "still thinking at the token limit, so no answer" in str(again.transcript.views[-1].footer.render())


async def test_a_locked_database_when_sending_keeps_the_prompt_and_the_app(make_app: AppMaker, tmp_path: Path) -> None:
    db = tmp_path / "conversations.db"
    app = make_app(store=ConversationStore(db, busy_timeout_s=0.1))
    async with app.run_test() as pilot:
        await ready(pilot)
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another program is writing
        app.prompt.text = "Important question"
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert any(n.startswith("Message not sent: ") and "locked" in n for n in notifications(app))
        assert app.prompt.text == "Important question" and app.is_running
        holder.execute("ROLLBACK")
        holder.close()
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.chat.generating and len(app.chat.session.turns) == 2)
        assert [m.role for m in app.store.messages(app.chat.session.conversation_id)] == ["user", "assistant"]  # type: ignore[arg-type]


async def test_older_turns_dropped_from_the_prompt_are_announced(make_app: AppMaker) -> None:
    app = make_app(FakeScript(dropped=4))
    async with app.run_test() as pilot:
        await send(pilot, "One more question")
        assert "Left the 4 oldest messages out of the prompt to fit the context." in notifications(app)
        assert app.chat.session.turns[-1].status == "complete"  # the answer itself is unaffected


async def test_an_error_mid_answer_keeps_what_arrived_and_the_app(make_app: AppMaker) -> None:
    script = FakeScript(fail_after=2)
    app = make_app(script)
    async with app.run_test() as pilot:
        await send(pilot, "Explain")
        error = "RuntimeError: llama_decode returned -3: the KV cache is full"
        assert error in notifications(app)
        row = app.store.messages(app.chat.session.conversation_id)[-1]  # type: ignore[arg-type]
        assert (row.status, row.content, row.thinking) == ("error", "Here is the **answer**.\n\n",
                                                           "Let me think about it.")
        view = app.transcript.views[-1]
        assert view.status == "error" and f"error: {error}" in str(view.footer.render())
        script.fail_after = None
        await send(pilot, "Try again")
        assert app.chat.session.turns[-1].status == "complete"
        # the failed answer's text is still what the model is shown of that turn
        sent = app.engine.calls[-1][0]  # type: ignore[union-attr]
        assert [m.content for m in sent] == ["Explain", "Here is the **answer**.\n\n", "Try again"]


async def test_switching_model_mid_answer_waits_for_the_answer(make_app: AppMaker) -> None:
    hold = threading.Event()
    factory = FakeFactory(FakeScript(hold=hold))
    app = make_app(factory=factory)
    try:
        async with app.run_test() as pilot:
            engine = (await ready(pilot)).engine
            app.prompt.text = "Think hard"
            await pilot.press("enter")
            await wait_for(pilot, factory.engines[0].holding.is_set)
            await pilot.press("f3")
            await pilot.pause(0.1)
            assert "Wait for the answer to finish (Esc stops it), then switch models" in notifications(app)
            assert app.screen is app.screen_stack[0] and len(factory.loads) == 1
            hold.set()
            await wait_for(pilot, lambda: not app.chat.generating)
            assert app.engine is engine and app.chat.session.turns[-1].status == "complete"
            await pilot.press("f3")
            await pilot.pause(0.1)
            assert type(app.screen).__name__ == "ModelPicker"  # once answered, F3 opens the picker
    finally:
        hold.set()
