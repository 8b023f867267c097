"""An answer streamed through the message view's Markdown.append builds the same document as one full render,
so MessageView.finish can skip the final re-render (it does when the source is unchanged)."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Markdown

from localr1.tui.widgets.message_view import MessageView

TRICKY = (
    "# Title\n\nSome *emphasis* and `code`.\n\nSetext heading\n---\n\n- one\n- two\n  continued\n\n"
    "1. first\n2. second\n\n```python\ndef f(x):\n\n    return x\n```\n\n> quoted\n> text\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\nA [link](http://example.com) and trailing text"
)


def blocks(markdown: Markdown) -> list[tuple[str, str]]:
    return [(type(child).__name__, str(getattr(child, "_content", "") or child.render())) for child in
            markdown.children]


class Pair(App[None]):
    def compose(self) -> ComposeResult:
        yield MessageView("assistant", status="streaming")
        yield Markdown(id="full")


def pieces_of(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [5, 13, 64])
async def test_the_views_streamed_answer_equals_a_full_render(size: int) -> None:
    app = Pair()
    async with app.run_test(size=(100, 120)) as pilot:
        view = app.query_one(MessageView)
        for piece in pieces_of(TRICKY, size):
            await view.append("", piece)  # as ChatController.on_batch streams each batch
            await pilot.pause(0)
        full_renders: list[str] = []
        render_again = view.answer.update

        async def counted(markdown: str) -> None:
            full_renders.append(markdown)
            await render_again(markdown)

        view.answer.update = counted  # type: ignore[method-assign,assignment]
        await view.finish(TRICKY, "")
        full = app.query_one("#full", Markdown)
        await full.update(TRICKY)
        await pilot.pause(0.1)
        assert full_renders == []  # nothing re-rendered: what is compared is what was streamed
        assert view.answer.source == TRICKY and view.content == TRICKY
        assert blocks(view.answer) == blocks(full)
        kinds = [kind for kind, _ in blocks(full)]
        assert {"MarkdownH1", "MarkdownH2", "MarkdownBulletList", "MarkdownOrderedList", "MarkdownFence",
                "MarkdownBlockQuote", "MarkdownTable"} <= set(kinds), kinds


async def test_a_final_text_that_differs_from_the_stream_is_rendered_in_full() -> None:
    app = Pair()
    async with app.run_test(size=(100, 60)) as pilot:
        view = app.query_one(MessageView)
        await view.append("", "# Draft\n\npartial")
        await view.finish("# Final\n\nAll of it.", "")
        await pilot.pause(0.1)
        full = app.query_one("#full", Markdown)
        await full.update("# Final\n\nAll of it.")
        await pilot.pause(0.1)
        assert blocks(view.answer) == blocks(full) and view.content == "# Final\n\nAll of it."
