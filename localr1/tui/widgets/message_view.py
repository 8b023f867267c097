"""One message in the transcript: header, optional thinking, Markdown answer, status line."""

from __future__ import annotations

import asyncio

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Markdown, Static

from localr1.tui.widgets.document import Document
from localr1.tui.widgets.thinking_block import ThinkingBlock


def chat_markdown() -> MarkdownIt:
    """Textual's parser with single newlines as line breaks, the way chat apps show a poem or an address
    (code blocks, tables and lists are parsed as before); streaming and the final render both use it."""
    parser = MarkdownIt("gfm-like")
    parser.core.ruler.push("hard_breaks", _hard_breaks)  # Textual renders a softbreak as a space
    return parser


def _hard_breaks(state: StateCore) -> None:
    for token in state.tokens:
        for child in token.children or ():
            if child.type == "softbreak":
                child.type = "hardbreak"


PREVIEW_CHARS = 4000  # longer user messages (big pastes) are shown shortened; the full text is stored


def preview(role: str, content: str) -> str:
    """What to render: a long user message is cut, with a note saying how long it is."""
    if role != "user" or len(content) <= PREVIEW_CHARS:
        return content
    return f"{content[:PREVIEW_CHARS]}\n\n*… {len(content):,} characters in all (shortened here)*"


STATUS_TEXT = {
    "stopped": "⏹ stopped",
    "interrupted": "⚠ interrupted (the app closed while answering)",
    "streaming": "…",
    "truncated": "✂ cut off at the token limit — raise max tokens in settings (F4)",
}
NO_ANSWER_TEXT = "⚠ still thinking at the token limit, so no answer — raise max tokens in settings (F4)"


def status_text(status: str, content: str) -> str:
    """What the footer says about a status; an R1 reply whose thinking used the whole budget says so."""
    if status == "truncated" and not content.strip():
        return NO_ANSWER_TEXT
    return STATUS_TEXT.get(status, "")


class MessageView(Vertical, can_focus=True):
    """A user or assistant message; assistant ones can stream."""

    BINDINGS = [Binding("c", "copy", "Copy message")]

    def __init__(
        self,
        role: str,
        content: str = "",
        thinking: str = "",
        *,
        status: str = "complete",
        footer: str = "",
        message_id: int | None = None,
        thinking_collapsed: bool = True,
    ) -> None:
        super().__init__(classes=f"message {role}")
        self.role = role
        self.content = content
        self.status = status
        self.message_id = message_id
        self.thinking = ThinkingBlock(thinking, collapsed=thinking_collapsed)
        self.thinking.set_class(bool(thinking), "-has-thinking")
        self.answer = Document(preview(role, content), classes="answer", parser_factory=chat_markdown)
        self.footer = Static(self._footer_text(footer), classes="footer", markup=False)
        self.footer.display = bool(self._footer_text(footer))
        self.rendered = asyncio.Event()  # set once the answer's Markdown blocks are mounted (heights are real)

    def compose(self) -> ComposeResult:
        yield Static("You" if self.role == "user" else "Assistant", classes="role")
        if self.role == "assistant":
            yield self.thinking
        yield self.answer
        yield self.footer

    def on_markdown_table_of_contents_updated(self, event: Markdown.TableOfContentsUpdated) -> None:
        """Markdown posts this when an update has mounted its blocks."""
        if event.markdown is self.answer:
            self.rendered.set()

    def _footer_text(self, extra: str = "") -> str:
        parts = [text] if (text := status_text(self.status, self.content)) else []
        if extra:
            parts.append(extra)
        return "  ".join(parts)

    def set_status(self, status: str, extra: str = "") -> None:
        """Show a status (stopped, interrupted, error…) and stats under the message."""
        self.status = status
        text = self._footer_text(extra)
        self.footer.update(text)
        self.footer.display = bool(text)

    async def append(self, thinking: str, answer: str) -> None:
        """Stream new text; the thinking block collapses when the answer begins."""
        if thinking:
            if not self.thinking.has_class("-has-thinking"):
                self.thinking.add_class("-has-thinking")
                self.thinking.live = True
                self.thinking.collapsed = False
            await self.thinking.append(thinking)
        if answer:
            if self.thinking.live:
                await self.thinking.finish()
                self.thinking.collapsed = True
            self.content += answer
            # Awaited append: each UI tick finishes its bounded slice before the next one starts.
            await self.answer.append(answer)

    async def finish(self, content: str, thinking: str) -> None:
        """End streaming with one full render of the final texts."""
        if self.thinking.live or self.thinking.text != thinking:
            self.thinking.text = thinking
            await self.thinking.finish()
        # The stream's appends re-parse from the last block, so when the source is unchanged the
        # document already equals a full render (tests/tui/test_markdown_stream.py); re-rendering
        # a long answer anyway froze the UI for over a second.
        if not self.answer.shows(content):
            await self.answer.update(content)
        self.content = content

    async def set_content(self, content: str) -> None:
        """Replace the text (used when a pasted message was trimmed)."""
        self.content = content
        await self.answer.update(preview(self.role, content))

    def action_copy(self) -> None:
        """Copy this message's answer text to the clipboard (OSC 52)."""
        self.app.copy_to_clipboard(self.content)
        self.app.notify("Message copied to the clipboard")
