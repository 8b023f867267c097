"""Pilot tests: the answer-now key, reasoning settings, per-conversation budget, welcome, names, line breaks."""

from __future__ import annotations

import threading
from dataclasses import replace

from textual.widgets import Input, Markdown, Select

from localr1.engine.thinking import ThinkingControl
from localr1.presets import PRESETS
from localr1.settings import Settings, load_settings
from localr1.tui.screens.text_prompt import TextPrompt
from localr1.tui.widgets.welcome import Welcome
from tests.tui.conftest import AppMaker
from tests.tui.fake_engine import FakeFactory, FakeScript
from tests.tui.helpers import ready, screen_text, send, wait_for


def _footer(app: object) -> str:
    return str(app.transcript.views[-1].footer.render())  # type: ignore[attr-defined]


async def test_f5_while_thinking_answers_now_and_says_so(make_app: AppMaker) -> None:
    hold = threading.Event()
    factory = FakeFactory(FakeScript(think_hold=hold))
    app = make_app(factory=factory)
    async with app.run_test(size=(110, 34)) as pilot:
        await ready(pilot)
        app.prompt.text = "Why is the sky blue?"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat.thinking_live)
        await pilot.press("f5")
        await wait_for(pilot, lambda: not app.chat.generating)
        assert factory.engines[-1].answer_asked.is_set()
        assert not hold.is_set()  # only the key ended the thinking
        assert "thinking ended: answer now" in _footer(app)
        assert app.transcript.views[-1].content.startswith("Here is")


async def test_f5_is_inert_when_nothing_thinks(make_app: AppMaker) -> None:
    factory = FakeFactory(FakeScript(thinking=[]))
    app = make_app(factory=factory)
    async with app.run_test(size=(110, 34)) as pilot:
        await send(pilot, "Hello")
        await pilot.press("f5")
        await pilot.pause(0.1)
        assert not factory.engines[-1].answer_asked.is_set()


async def test_settings_set_budget_loop_guard_and_preset(make_app: AppMaker, tmp_path: object) -> None:
    factory = FakeFactory(FakeScript(answer=["So \\boxed{\\frac{1}{2}} it is."]))
    app = make_app(factory=factory)
    async with app.run_test(size=(110, 40)) as pilot:
        await ready(pilot)
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.screen.id == "settings")
        app.screen.query_one("#think_budget", Input).value = "90s"
        app.screen.query_one("#loop_guard", Select).value = "warn"
        app.screen.query_one("#preset", Select).value = "math"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.id != "settings")
        assert (app.settings.think_budget, app.settings.loop_guard, app.settings.preset) == ("90s", "warn", "math")
        assert load_settings(app.save_settings_to) == app.settings
        await send(pilot, "What is one half?")
        engine = factory.engines[-1]
        assert engine.controls[-1] == ThinkingControl(budget_seconds=90.0, loop_guard="warn")
        sent = engine.calls[-1][0][-1].content
        assert sent == f"What is one half?\n\n{PRESETS['math']}"
        assert app.chat.session.turns[0].content == "What is one half?"  # stored as typed
        assert "final answer: \\frac{1}{2}" in _footer(app)


async def test_a_bad_budget_in_settings_is_refused_with_a_message(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=(110, 40)) as pilot:
        await ready(pilot)
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.screen.id == "settings")
        app.screen.query_one("#think_budget", Input).value = "lots"
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert app.screen.id == "settings"
        assert "tokens (2000) or time (90s, 2m)" in str(app.screen.query_one("#settings-error").render())


async def test_a_conversation_budget_wins_over_the_settings_one(make_app: AppMaker) -> None:
    factory = FakeFactory()
    app = make_app(factory=factory, settings=replace(Settings(), think_budget="4000"))
    async with app.run_test(size=(110, 34)) as pilot:
        await send(pilot, "First")
        assert factory.engines[-1].controls[-1] == ThinkingControl(budget_tokens=4000)
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        app.screen.query_one(Input).value = "0"
        await pilot.press("enter")
        await pilot.pause(0.1)
        conversation = app.chat.session.conversation_id
        assert conversation is not None and app.store.think_budget(conversation) == "0"
        await send(pilot, "Second")
        assert factory.engines[-1].controls[-1] == ThinkingControl(budget_tokens=0)


async def test_the_empty_chat_welcomes_and_the_first_message_replaces_it(make_app: AppMaker) -> None:
    app = make_app(FakeScript(thinking=[], name="Smollm2 135M 8k Lc100K Mix1 Ep2",
                              display_name="SmolLM2-135M-Instruct (demo)"))
    async with app.run_test(size=(110, 40)) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: "SmolLM2-135M-Instruct" in screen_text(app))
        text = screen_text(app)
        assert "does not reason" in text and "localr1 pull r1" in text and "localr1 chat --model" in text
        assert "F5" in text and "Esc" in text and "Enter" in text
        # The status bar names the model as the registry does, not as its GGUF does.
        assert "SmolLM2-135M-Instruct (demo) · Q4_K_M" in text and "Mix1 Ep2" not in text
        await send(pilot, "Hello")
        assert not app.query(Welcome)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: bool(app.query(Welcome)))


async def test_the_welcome_shows_the_planners_expected_speed(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=(110, 40)) as pilot:
        await ready(pilot)
        app.chat.show_model(_WithSpeed(app.engine))  # type: ignore[arg-type]
        await wait_for(pilot, lambda: "about 7 tokens/s" in screen_text(app))


class _WithSpeed:
    """An engine whose describe() carries the planner's prediction."""

    def __init__(self, engine: object) -> None:
        self._engine = engine
        self.context_size = 4096

    def describe(self) -> dict[str, object]:
        return {**self._engine.describe(), "predicted_tokens_per_s": 7.2}  # type: ignore[attr-defined]


async def test_single_newlines_are_line_breaks_streamed_and_final(make_app: AppMaker) -> None:
    poem = "Roses are red,\nviolets are blue.\n\n```\nx = 1\ny = 2\n```\n\n- one\n- two"
    app = make_app(FakeScript(thinking=[], answer=[poem[i:i + 7] for i in range(0, len(poem), 7)]))
    async with app.run_test(size=(110, 40)) as pilot:
        await send(pilot, "A poem please")
        answer = app.transcript.views[-1].answer
        paragraph = next(child for child in answer.children if type(child).__name__ == "MarkdownParagraph")
        assert str(paragraph._content) == "Roses are red,\nviolets are blue."  # type: ignore[attr-defined]
        full = Markdown(poem, parser_factory=answer._parser_factory)
        await app.mount(full)
        await pilot.pause(0.1)
        def blocks(md: Markdown) -> list[str]:
            return [f"{type(c).__name__}:{getattr(c, '_content', '')}" for c in md.children]
        assert blocks(answer) == blocks(full)
        assert "MarkdownFence" in "".join(blocks(full))


async def test_the_footer_says_when_a_loop_stopped_the_answer(make_app: AppMaker) -> None:
    app = make_app(FakeScript(thinking=[], stop="repetition", loop_after=113))
    async with app.run_test(size=(110, 34)) as pilot:
        await send(pilot, "Describe the history of Rome")
        assert "loop detected after 113 tokens (answer stopped)" in _footer(app)
