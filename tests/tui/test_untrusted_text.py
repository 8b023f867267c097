"""Text from model files, conversation titles and errors is shown as plain text, never as markup."""

from __future__ import annotations

import tomllib
from pathlib import Path

from localr1.settings import Settings
from localr1.store import ConversationStore
from tests.tui.conftest import AppMaker
from tests.tui.fake_engine import FakeFactory, FakeScript
from tests.tui.helpers import notifications, ready, screen_text, send, wait_for

HOSTILE_NAMES = ("Evil [/bold] model", "Qwen [experimental] 7B",
                 "[b]x[/b] [link=file:///etc]y[/link] [@click=app.quit]z")


async def test_hostile_model_names_are_shown_as_written(make_app: AppMaker, tmp_path: Path) -> None:
    for name in HOSTILE_NAMES:
        factory = FakeFactory(FakeScript(name=name))
        app = make_app(settings=Settings(model="/models/hostile.gguf"), factory=factory)
        async with app.run_test(size=(160, 30)) as pilot:
            await send(pilot, "Hi")  # the app stays up and answers
            assert str(app.status_bar.model_label.render()) == f"{name} · Q4_K_M"
            assert f"{name} · Q4_K_M" in screen_text(app)
            assert app.chat.session.turns[-1].status == "complete"


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m"  # retitle the terminal, clear the screen, a one-byte CSI


async def test_escape_sequences_in_model_names_and_errors_are_shown_not_sent(make_app: AppMaker) -> None:
    factory = FakeFactory(FakeScript(name=f"Evil{ESCAPES}"))
    app = make_app(settings=Settings(model="/models/hostile.gguf"), factory=factory)
    async with app.run_test(size=(160, 30)) as pilot:
        await ready(pilot)
        shown = str(app.status_bar.model_label.render())
        assert shown == "Evil\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m · Q4_K_M"
        factory.script = FakeScript(describe_error=ValueError(f"bad name {ESCAPES}"))
        app.load_model("/models/odd.gguf")
        await wait_for(pilot, lambda: any("Could not load" in n for n in notifications(app)))
        message = next(n for n in notifications(app) if "Could not load" in n)
        assert message.endswith("bad name \\x1b]0;pwned\\x07\\x1b[2J\\x9b31m")
        assert not any(c in message + screen_text(app) for c in "\x1b\x07\x9b")


async def test_a_model_whose_facts_cannot_be_shown_never_becomes_the_saved_default(
        make_app: AppMaker, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    factory = FakeFactory()
    app = make_app(factory=factory)
    async with app.run_test() as pilot:
        first = (await ready(pilot)).engine
        factory.script = FakeScript(describe_error=ValueError("unreadable [general.name]"))
        app.load_model("/models/odd.gguf")
        await wait_for(pilot, lambda: app.loading_model is None and len(factory.engines) == 2)
        await pilot.pause(0.05)
        assert app.engine is first and factory.engines[1].closed
        assert any(n == "Could not load odd.gguf: ValueError: unreadable [general.name]" for n in notifications(app))
        assert not any(n.markup for n in app._notifications)  # every notification shown as written
        assert app.settings.model == "demo"
        assert not config.exists() or tomllib.loads(config.read_text()).get("model") != "/models/odd.gguf"
        assert str(app.status_bar.model_label.render()) == "Fake R1 · Q4_K_M"  # the previous model again
        factory.script = FakeScript(name="Good [model]")
        app.load_model("/models/good.gguf")
        await wait_for(pilot, lambda: app.loading_model is None and app.engine is not first)
        assert tomllib.loads(config.read_text())["model"] == "/models/good.gguf"  # saved once shown


async def test_a_load_raising_any_exception_is_one_line_and_the_app_stays_up(make_app: AppMaker) -> None:
    factory = FakeFactory()
    app = make_app(settings=Settings(model="/models/badtemplate.gguf"), factory=factory)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: any("Could not load" in n for n in notifications(app)))
        message = next(n for n in notifications(app) if "Could not load" in n)
        assert message.startswith("Could not load badtemplate.gguf: TemplateSyntaxError: ") and "\n" not in message
        assert app.is_running and app.engine is None
        assert "no model" in str(app.status_bar.model_label.render())
        app.load_model("demo")  # a good model after the bad one
        first = await ready(pilot)
        engine = first.engine
        app.load_model("/models/badtemplate.gguf")  # and a bad one while a model is loaded: it is kept
        await wait_for(pilot, lambda: app.loading_model is None)
        await pilot.pause(0.05)
        assert app.engine is engine and sum("TemplateSyntaxError" in n for n in notifications(app)) == 2
        await send(pilot, "Still answering?")
        assert app.chat.session.turns[-1].status == "complete"


async def test_hostile_conversation_titles_are_plain_in_sidebar_search_and_rename(
        make_app: AppMaker, tmp_path: Path) -> None:
    title = "Evil [/] [red]x[/red] a[i]"
    store = ConversationStore(tmp_path / "conversations.db")
    cid = store.create_conversation(title)
    store.add_message(cid, "user", "about penguins")
    store.add_message(cid, "assistant", "Penguins [/] swim")
    store.close()
    app = make_app()
    async with app.run_test(size=(140, 34)) as pilot:
        await ready(pilot)
        await pilot.pause(0.1)
        assert title in screen_text(app)  # sidebar
        await pilot.press("ctrl+f")
        await pilot.pause(0.1)
        await pilot.press(*"penguin")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert f"{title}: " in text and "Penguins [/] swim" in text
        await pilot.press("escape")
        await pilot.pause(0.1)
        await pilot.press("f2")
        await pilot.pause(0.1)
        assert app.screen.query_one("Input").value == title  # type: ignore[attr-defined]
        assert title in screen_text(app)


async def test_a_huge_title_takes_a_few_lines_of_the_sidebar(make_app: AppMaker, tmp_path: Path) -> None:
    """A 100,000-character title (renamed from a paste) filled the whole sidebar and hid every other conversation."""
    store = ConversationStore(tmp_path / "conversations.db")
    store.add_message(store.create_conversation("Second one"), "user", "hello")
    store.add_message(store.create_conversation("T" * 100_000 + "\nlast line"), "user", "hello")
    store.close()
    app = make_app()
    async with app.run_test(size=(140, 34)) as pilot:
        await ready(pilot)
        await pilot.pause(0.1)
        assert "Second one" in screen_text(app)
        first = app.query("ConversationItem").first()
        assert first.region.height <= 4 and "…" in screen_text(app)


async def test_typed_settings_errors_are_echoed_as_plain_text(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("f4")
        await pilot.pause(0.1)
        app.screen.query_one("#temperature").value = "[/bold]"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert "temperature must be a number, not '[/bold]'" in str(app.screen.query_one("#settings-error").render())
        assert "not '[/bold]'" in screen_text(app)


async def test_model_file_names_in_the_picker_are_plain(make_app: AppMaker, private_home: Path) -> None:
    from localr1.paths import models_dir

    odd = models_dir() / "[bold]odd[red] model [i].gguf"
    odd.parent.mkdir(parents=True)
    odd.write_bytes(b"GGUF")
    app = make_app()
    async with app.run_test(size=(120, 34)) as pilot:
        await ready(pilot)
        await pilot.press("f3")
        await pilot.pause(0.2)
        assert "[bold]odd[red] model [i].gguf" in screen_text(app)
