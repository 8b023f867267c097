"""Markdown that marks its last block, so the last block's bottom margin can be dropped without `:last-child`.

Textual restyles every sibling of a widget (and each sibling's subtree) on every mount when any CSS
rule with an order pseudo-class (`:last-child`, `:first-child`...) could apply to them. With such a
rule on Markdown blocks, every streamed append restyled every block of the answer, so each cost more
as the answer grew, and opening a long conversation was quadratic. A class moved on two blocks costs
nothing of the sort.
"""

from __future__ import annotations

from textual.await_complete import AwaitComplete
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownBlock

LAST = "-last"


class Document(Markdown):
    """A Markdown widget whose last top-level block carries the class `-last`."""

    _last: MarkdownBlock | None = None

    def update(self, markdown: str) -> AwaitComplete:
        """Replace the document, then mark its last block."""
        return AwaitComplete(self._then_mark(super().update(markdown)))

    def append(self, markdown: str) -> AwaitComplete:
        """Append to the document, then mark its last block."""
        return AwaitComplete(self._then_mark(super().append(markdown)))

    async def _then_mark(self, done: AwaitComplete) -> None:
        await done
        last = next((c for c in reversed(self.children) if isinstance(c, MarkdownBlock)), None)
        if last is not self._last:
            if self._last is not None:
                self._last.remove_class(LAST)
            if last is not None:
                last.add_class(LAST)
            self._last = last
