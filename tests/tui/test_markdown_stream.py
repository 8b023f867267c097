"""Streaming Markdown in small pieces builds the same document as one full render."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Markdown

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
        yield Markdown(id="streamed")
        yield Markdown(id="full")


async def test_streamed_document_equals_full_render() -> None:
    app = Pair()
    async with app.run_test(size=(100, 80)) as pilot:
        streamed = app.query_one("#streamed", Markdown)
        stream = Markdown.get_stream(streamed)
        pieces = [TRICKY[i:i + 5] for i in range(0, len(TRICKY), 5)]
        for piece in pieces:
            await stream.write(piece)
            await pilot.pause(0)
        await stream.stop()
        full = app.query_one("#full", Markdown)
        await full.update(TRICKY)
        await pilot.pause(0.1)
        assert streamed.source == TRICKY
        assert blocks(streamed) == blocks(full)
        kinds = [kind for kind, _ in blocks(full)]
        assert {"MarkdownH1", "MarkdownH2", "MarkdownBulletList", "MarkdownOrderedList", "MarkdownFence",
                "MarkdownBlockQuote", "MarkdownTable"} <= set(kinds), kinds
