"""Pilot tests of the chat app's actions, asserting on database rows, widgets and engine calls."""

from __future__ import annotations

import json
import threading
import tomllib
from pathlib import Path

from textual import events

from localr1.engine.template import render
from localr1.settings import Settings
from tests.gguf_edit import R1_TEMPLATE
from tests.tui.conftest import AppMaker
from tests.tui.fake_engine import FakeEngine, FakeFactory, FakeScript
from tests.tui.helpers import killed_process, notifications, ready, send, wait_for

ANSWER = "Here is the **answer**.\n\n```python\nprint('hi')\n```\n"


async def test_send_streams_and_stores_answer_and_thinking_apart(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, "Hello there")
        cid = app.chat.session.conversation_id
        assert cid is not None
        rows = app.store.messages(cid)
        assert [(m.role, m.content, m.thinking, m.status) for m in rows] == [
            ("user", "Hello there", "", "complete"),
            ("assistant", ANSWER, "Let me think about it.", "complete"),
        ]
        assert rows[1].stats["generated_tokens"] == 9
        views = app.transcript.views
        assert views[1].content == ANSWER and views[1].thinking.text == "Let me think about it."
        assert views[1].thinking.collapsed  # collapsed once the answer started
        assert app.store.conversation(cid).title == "Hello there"  # type: ignore[union-attr]
        engine = app.engine
        assert engine is not None and engine.calls[0][0][-1].content == "Hello there"  # type: ignore[attr-defined]


async def test_empty_prompt_is_ignored(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        app.prompt.text = "   \n  "
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.store.conversations() == [] and app.engine.calls == []  # type: ignore[union-attr]


async def test_escape_stops_and_keeps_partial_answer(make_app: AppMaker) -> None:
    hold = threading.Event()
    app = make_app(FakeScript(hold=hold))
    async with app.run_test() as pilot:
        await ready(pilot)
        app.prompt.text = "Think hard"
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(app.transcript.views) and app.transcript.views[-1].thinking.text != "")
        view = app.transcript.views[-1]
        assert not view.thinking.collapsed and view.thinking.live  # open while thinking
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.chat.generating)
        row = app.store.messages(app.chat.session.conversation_id)[-1]  # type: ignore[arg-type]
        assert row.status == "stopped" and row.thinking == "Let me think about it." and row.content == ""
        assert "stopped" in str(view.footer.render())


async def test_escape_before_the_engine_starts_still_stops_it(make_app: AppMaker) -> None:
    gate = threading.Event()
    app = make_app(FakeScript(start_gate=gate))
    async with app.run_test() as pilot:
        engine = (await ready(pilot)).engine
        assert isinstance(engine, FakeEngine)
        app.prompt.text = "Think hard"
        await pilot.press("enter")
        await wait_for(pilot, engine.starting.is_set)  # the worker runs, the engine has not begun
        await pilot.press("escape")
        gate.set()  # the engine starts now, clearing its own cancel flag
        await wait_for(pilot, lambda: not app.chat.generating)
        row = app.store.messages(app.chat.session.conversation_id)[-1]  # type: ignore[arg-type]
        assert row.status == "stopped" and row.content == "" and row.thinking == "Let me "


async def test_regenerate_replaces_the_last_answer(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, "Question")
        first_id = app.chat.session.turns[-1].id
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not app.chat.generating and app.chat.session.turns[-1].id != first_id)
        rows = app.store.messages(app.chat.session.conversation_id)  # type: ignore[arg-type]
        assert [r.role for r in rows] == ["user", "assistant"] and rows[1].id != first_id
        calls = app.engine.calls  # type: ignore[union-attr]
        assert len(calls) == 2 and [m.content for m in calls[0][0]] == [m.content for m in calls[1][0]]
        assert len(app.transcript.views) == 2


async def test_edit_last_message_puts_it_back_in_the_input(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, "First")
        await send(pilot, "Second with a typo")
        await pilot.press("ctrl+l")
        await pilot.pause(0.1)
        assert app.prompt.text == "Second with a typo"
        assert [r.content for r in app.store.messages(app.chat.session.conversation_id)] == ["First", ANSWER]  # type: ignore[arg-type]
        assert len(app.transcript.views) == 2
        app.prompt.text = "Second, fixed"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.chat.generating and len(app.chat.session.turns) == 4)
        assert app.store.messages(app.chat.session.conversation_id)[2].content == "Second, fixed"  # type: ignore[arg-type]


async def test_copy_answer_code_block_and_message(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, "Code please")
        await pilot.press("ctrl+o")
        assert app.clipboard == ANSWER
        await pilot.press("ctrl+g")
        assert app.clipboard == "print('hi')"
        app.transcript.views[0].focus()
        await pilot.press("c")
        assert app.clipboard == "Code please"


async def test_thinking_is_stored_shown_on_reload_and_never_sent_back(make_app: AppMaker, tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, "One")
        await send(pilot, "Two")
        sent = app.engine.calls[1][0]  # type: ignore[union-attr]
        prompt = render(R1_TEMPLATE, sent, bos_token="<s>", eos_token="</s>", r1_rules=True).text
        assert "Let me think" not in prompt and "<｜Assistant｜>Here is the **answer**." in prompt
    again = make_app(db=tmp_path / "conversations.db")
    async with again.run_test() as pilot:
        await ready(pilot)
        views = again.transcript.views
        assert [v.role for v in views] == ["user", "assistant", "user", "assistant"]
        assert views[1].thinking.region.height > 0 and views[1].thinking.text == "Let me think about it."
        assert views[1].thinking.collapsed


async def test_toggle_all_thinking(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, "One")
        await send(pilot, "Two")
        blocks = [v.thinking for v in app.transcript.views if v.role == "assistant"]
        assert all(b.collapsed for b in blocks)
        await pilot.press("ctrl+t")
        assert not any(b.collapsed for b in blocks)
        await pilot.press("ctrl+t")
        assert all(b.collapsed for b in blocks)


async def test_new_rename_delete_conversations(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, "First chat")
        first = app.chat.session.conversation_id
        await pilot.press("ctrl+n")
        assert app.transcript.views == [] and app.chat.session.conversation_id is None
        await send(pilot, "Second chat")
        second = app.chat.session.conversation_id
        assert first != second and len(app.store.conversations()) == 2
        await pilot.press("f2")
        await pilot.pause(0.1)
        for _ in range(len("Second chat")):
            await pilot.press("backspace")
        await pilot.press(*"Renamed", "enter")
        await pilot.pause(0.1)
        assert app.store.conversation(second).title == "Renamed"  # type: ignore[arg-type,union-attr]
        assert "Renamed" in [item.conversation.title for item in app.sidebar.query("ConversationItem")]  # type: ignore[attr-defined]
        await pilot.press("f8")
        await pilot.pause(0.1)
        await pilot.press("y")
        await pilot.pause(0.1)
        assert [c.id for c in app.store.conversations()] == [first]
        assert app.chat.session.conversation_id == first


async def test_delete_can_be_declined(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, "Keep me")
        await pilot.press("f8")
        await pilot.pause(0.1)
        await pilot.press("n")
        await pilot.pause(0.1)
        assert len(app.store.conversations()) == 1


async def test_search_opens_the_matching_conversation(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, "Tell me about penguins")
        target = app.chat.session.conversation_id
        await pilot.press("ctrl+n")
        await send(pilot, "Something else")
        await pilot.press("ctrl+f")
        await pilot.pause(0.1)
        await pilot.press(*"pengu")
        await pilot.pause(0.1)
        assert len(app.screen.hits) == 1  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.chat.session.conversation_id == target
        assert app.transcript.views[0].content == "Tell me about penguins"


async def test_export_writes_markdown_and_json(make_app: AppMaker, tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, "Export me")
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        md = next((tmp_path / "exports").glob("*.md"))
        js = next((tmp_path / "exports").glob("*.json"))
        assert "Export me" in md.read_text() and "Let me think about it." in md.read_text()
        assert json.loads(js.read_text())["messages"][1]["content"] == ANSWER
        assert any("Exported to" in n for n in notifications(app))


async def test_export_into_a_file_says_what_is_wrong(make_app: AppMaker, tmp_path: Path) -> None:
    """A file where the exports folder should be: the notification said '[Errno 17] File exists: ...'."""
    (tmp_path / "exports").write_text("mine")
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, "Export me")
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        failed = [n for n in notifications(app) if n.startswith("Export failed")]
        assert len(failed) == 1 and "[Errno" not in failed[0], failed
        assert f"{tmp_path / 'exports'} is a file, not a folder" in failed[0] and "move it away" in failed[0]
    assert (tmp_path / "exports").read_text() == "mine"


async def test_model_picker_switches_and_survives_a_broken_model(make_app: AppMaker, private_home: Path) -> None:
    from localr1.paths import models_dir

    broken = models_dir() / "broken.gguf"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"GGUF")
    factory = FakeFactory()
    app = make_app(factory=factory)
    async with app.run_test() as pilot:
        await ready(pilot)
        first_engine = app.engine
        await pilot.press("f3")
        await pilot.pause(0.1)
        options = app.screen.query_one("OptionList")
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]  # type: ignore[attr-defined]
        assert any("SmolLM2" in label for label in labels) and any("broken.gguf" in label for label in labels)
        await pilot.press("down", "enter")  # the broken file is listed after the demo
        await wait_for(pilot, lambda: len(factory.loads) == 2)
        await pilot.pause(0.1)
        assert app.engine is first_engine
        assert any("Could not load broken.gguf" in n for n in notifications(app))
        await send(pilot, "Still works?")
        assert app.chat.session.turns[-1].status == "complete"
        await pilot.press("f3")
        await pilot.pause(0.1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(factory.loads) == 3 and app.engine is not first_engine)
        assert factory.loads[-1][0] == "demo" and first_engine.closed  # type: ignore[union-attr]


async def test_model_that_fails_at_startup_leaves_the_app_usable(make_app: AppMaker) -> None:
    app = make_app(settings=Settings(model="/models/broken.gguf"))
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: any("Could not load" in n for n in notifications(app)))
        assert "no model" in str(app.status_bar.model_label.render())
        app.prompt.text = "hello?"
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert any("No model is loaded" in n for n in notifications(app))
        assert app.store.conversations() == []
        assert app.prompt.text == "hello?"  # nothing typed is lost


async def test_settings_are_saved_and_used(make_app: AppMaker, tmp_path: Path) -> None:
    factory = FakeFactory()
    app = make_app(factory=factory)
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press("f4")
        await pilot.pause(0.1)
        screen = app.screen
        screen.query_one("#temperature").value = "abc"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await pilot.pause(0.05)
        assert "temperature must be a number" in str(screen.query_one("#settings-error").render())
        screen.query_one("#temperature").value = "0.3"  # type: ignore[attr-defined]
        screen.query_one("#context_size").value = "8192"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(factory.loads) == 2 and app.engine is factory.engines[-1])
        saved = tomllib.loads((tmp_path / "config.toml").read_text())
        assert saved["temperature"] == 0.3 and saved["context_size"] == 8192
        assert factory.loads[-1][1].context_size == 8192
        await send(pilot, "Hi")
        assert app.engine.calls[-1][1].temperature == 0.3  # type: ignore[union-attr]


async def test_show_thinking_off_hides_thinking_blocks(make_app: AppMaker) -> None:
    app = make_app(settings=Settings(show_thinking=False))
    async with app.run_test() as pilot:
        await send(pilot, "Hi")
        block = app.transcript.views[-1].thinking
        assert block.text == "Let me think about it."  # still stored and kept
        assert app.has_class("-hide-thinking") and block.region.height == 0


async def test_huge_paste_is_trimmed_to_the_context_with_a_notice(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        big = "lorem ipsum dolor " * 60_000  # about 1 MB
        app.post_message(events.Paste(big))  # as the terminal driver delivers a paste
        await pilot.pause(0.1)
        assert app.prompt.text == "[pasted text #1: 1,080,000 characters]"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.chat.generating, timeout=30)
        user = app.store.messages(app.chat.session.conversation_id)[0]  # type: ignore[arg-type]
        assert 0 < len(user.content) < len(big) and big.startswith(user.content)
        assert app.engine.count_tokens(user.content) <= 4096  # type: ignore[union-attr]
        assert any("were kept to fit the context" in n for n in notifications(app))
        assert app.chat.session.turns[-1].status == "complete"
        assert app.engine.calls[0][0][-1].content == user.content  # type: ignore[union-attr]
        assert "characters in all (shortened here)" in app.transcript.views[0].answer.source
        assert app.prompt.text == "" and app.prompt.pasted == {}


async def test_small_paste_goes_into_the_editor(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        app.post_message(events.Paste("a few words"))
        await pilot.pause(0.1)
        assert app.prompt.text == "a few words" and app.prompt.pasted == {}


async def test_interrupted_answer_is_marked_on_next_start(make_app: AppMaker, tmp_path: Path) -> None:
    from localr1.store import ConversationStore

    store = ConversationStore(tmp_path / "conversations.db")
    cid = store.create_conversation("Killed")
    store.add_message(cid, "user", "Long story please")
    mid = store.add_message(cid, "assistant", "Once upon a", thinking="plan", status="streaming")
    store.conn.execute("UPDATE messages SET stats = ? WHERE id = ?", (json.dumps({"writer": killed_process()}), mid))
    store.close()
    app = make_app(db=tmp_path / "conversations.db")
    async with app.run_test() as pilot:
        await ready(pilot)
        view = app.transcript.views[-1]
        assert view.content == "Once upon a" and view.status == "interrupted"
        assert "interrupted" in str(view.footer.render())


async def test_corrupt_database_is_reported_and_app_starts(make_app: AppMaker, tmp_path: Path) -> None:
    db = tmp_path / "conversations.db"
    db.write_bytes(b"garbage" * 1000)
    app = make_app(db=db)
    async with app.run_test() as pilot:
        await ready(pilot)
        assert any("was unreadable and was moved to" in n and str(tmp_path) in n for n in notifications(app))
        await send(pilot, "Fresh start")
        assert len(app.store.conversations()) == 1


async def test_small_terminal_keeps_the_layout_usable(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        await send(pilot, "Hi")
        assert app.has_class("-narrow") and app.sidebar.region.width == 0
        for widget in (app.prompt, app.status_bar, app.transcript):
            region = widget.region
            assert region.width > 0 and region.height > 0 and region.bottom <= 20 and region.right <= 60
        await pilot.press("ctrl+b")
        await pilot.pause(0.05)
        assert app.sidebar.region.width > 0


async def test_help_lists_every_binding(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=(120, 50)) as pilot:
        await ready(pilot)
        await pilot.press("f1")
        await pilot.pause(0.1)
        table = app.screen.query_one("DataTable")
        rows = [table.get_row_at(i)[1] for i in range(table.row_count)]  # type: ignore[attr-defined]
        for description in ("Stop generation", "Regenerate last answer", "Search conversations", "Settings",
                            "Switch model", "Export conversation (Markdown + JSON)", "Copy last code block"):
            assert description in rows
        await pilot.press("escape")
        assert app.screen is app.screen_stack[0]


async def test_command_palette_offers_the_actions(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Regenerate last answer", "New conversation", "Search conversations", "Settings"} <= set(titles)


async def test_view_follows_the_stream_unless_the_user_scrolled_up(make_app: AppMaker) -> None:
    lines = [f"Line {i} of a long answer.\n\n" for i in range(300)]
    app = make_app(FakeScript(thinking=[], answer=lines, delay_s=0.02))
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        app.prompt.text = "Long please"
        await pilot.press("enter")
        transcript = app.transcript
        await wait_for(pilot, lambda: transcript.max_scroll_y > 20)
        assert transcript.scroll_y >= transcript.max_scroll_y - 1  # following
        transcript.scroll_home(animate=False)  # the user scrolls up
        await pilot.pause(0.3)
        grown = transcript.max_scroll_y
        assert transcript.scroll_y == 0 and app.chat.generating
        await wait_for(pilot, lambda: transcript.max_scroll_y > grown + 5)
        assert transcript.scroll_y == 0  # stays where the user put it
        transcript.scroll_end(animate=False)  # back to the bottom: following again
        await wait_for(pilot, lambda: not app.chat.generating, timeout=20)
        await pilot.pause(0.2)
        assert transcript.scroll_y >= transcript.max_scroll_y - 1


async def test_typing_and_new_lines_in_the_prompt(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press(*"two", "ctrl+j", *"lines")
        assert app.prompt.text == "two\nlines"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.chat.generating and bool(app.chat.session.turns))
        assert app.chat.session.turns[0].content == "two\nlines" and app.prompt.text == ""


async def test_no_sending_while_a_model_switch_is_loading(make_app: AppMaker) -> None:
    factory = FakeFactory()
    app = make_app(factory=factory)
    async with app.run_test() as pilot:
        first = (await ready(pilot)).engine
        factory.load_delay_s = 1.0
        await pilot.press("f3")
        await pilot.pause(0.1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.loading_model is not None)
        app.prompt.text = "Too early"
        await pilot.press("enter")
        await pilot.pause(0.05)
        assert any("send again in a moment" in n for n in notifications(app))
        assert app.store.conversations() == [] and app.prompt.text == "Too early"
        await wait_for(pilot, lambda: app.loading_model is None and app.engine is not first)
        assert first.closed  # type: ignore[union-attr]
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.chat.generating and bool(app.chat.session.turns))
        assert app.chat.session.turns[-1].status == "complete"


async def test_a_stale_load_never_replaces_the_newest_model(make_app: AppMaker) -> None:
    factory = FakeFactory()
    app = make_app(factory=factory)
    async with app.run_test() as pilot:
        first = (await ready(pilot)).engine
        gate_a = factory.gates["/models/a.gguf"] = threading.Event()
        gate_b = factory.gates["/models/b.gguf"] = threading.Event()
        app.load_model("/models/a.gguf")  # superseded before it finishes
        app.load_model("/models/b.gguf")
        await wait_for(pilot, lambda: len(factory.loads) == 3)
        gate_b.set()  # the newest load finishes first...
        await wait_for(pilot, lambda: app.loading_model is None)
        newest, first_engine = app.engine, factory.engines[0]
        assert isinstance(newest, FakeEngine) and newest.model == "/models/b.gguf" and first is first_engine
        gate_a.set()  # ...and the stale one last
        await wait_for(pilot, lambda: len(factory.engines) == 3)
        stale = factory.engines[-1]
        await wait_for(pilot, lambda: stale.closed or app.engine is stale)
        assert stale.model == "/models/a.gguf" and stale.closed
        assert app.engine is newest and not newest.closed and first_engine.closed
        assert app.settings.model == "/models/b.gguf"
