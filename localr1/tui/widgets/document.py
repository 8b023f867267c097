"""Markdown that shows model text safely and marks its last block (so its bottom margin can go without `:last-child`).

Every text goes through `localr1.plaintext.printable` first: a model's answer or reasoning can hold ESC, BEL or
C1 bytes (a prompt-injected document is enough), which Textual would otherwise write to the terminal as they are.

Textual restyles every sibling of a widget (and each sibling's subtree) on every mount when any CSS
rule with an order pseudo-class (`:last-child`, `:first-child`...) could apply to them. With such a
rule on Markdown blocks, every streamed append restyled every block of the answer, so each cost more
as the answer grew, and opening a long conversation was quadratic. A class moved on two blocks costs
nothing of the sort.
"""

from __future__ import annotations

from collections.abc import Callable

from markdown_it import MarkdownIt
from textual.await_complete import AwaitComplete
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownBlock

from localr1.plaintext import printable

LAST = "-last"


def shown(text: str) -> str:
    """What a Document shows for `text`: control characters as `\\x1b` escapes, newlines and tabs kept.

    It works character by character, so streaming pieces one at a time shows what the whole text shows.
    """
    return printable(text, limit=None)


class Document(Markdown):
    """A Markdown widget that never passes control characters on, whose last top-level block has the class `-last`."""

    _last: MarkdownBlock | None = None

    def __init__(self, markdown: str | None = None, *, classes: str | None = None,
                 parser_factory: Callable[[], MarkdownIt] | None = None) -> None:
        parsers: list[MarkdownIt] = []

        def one_parser() -> MarkdownIt:
            # Textual asks for a new parser at every streamed append, and building one (with its linkifier)
            # costs more than parsing a tick's text. A document's parses never overlap (Markdown parses under
            # its lock), and a parser is not shared between documents: its linkifier keeps state while it parses.
            if not parsers:
                parsers.append(parser_factory() if parser_factory is not None else MarkdownIt("gfm-like"))
            return parsers[0]

        super().__init__(None if markdown is None else shown(markdown), classes=classes, parser_factory=one_parser)

    def shows(self, text: str) -> bool:
        """Whether the document already shows `text` (so re-rendering it would change nothing)."""
        return self.source == shown(text)

    def update(self, markdown: str) -> AwaitComplete:
        """Replace the document, then mark its last block."""
        return AwaitComplete(self._then_mark(super().update(shown(markdown))))

    def append(self, markdown: str) -> AwaitComplete:
        """Append to the document, then mark its last block."""
        return AwaitComplete(self._then_mark(super().append(shown(markdown))))

    async def _then_mark(self, done: AwaitComplete) -> None:
        await done
        last = next((c for c in reversed(self.children) if isinstance(c, MarkdownBlock)), None)
        if last is not self._last:
            if self._last is not None:
                self._last.remove_class(LAST)
            if last is not None:
                last.add_class(LAST)
            self._last = last
