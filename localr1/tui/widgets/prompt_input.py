"""The multi-line prompt: Enter sends, Ctrl+J (or Shift+Enter where the terminal reports it) adds a line.

A very large paste is kept aside and shown as a one-line placeholder, so the editor never has to
lay out a megabyte of text; the placeholder is expanded back when the message is sent.
"""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea
from textual.widgets.text_area import EditResult

LARGE_PASTE_CHARS = 20_000


class PromptInput(TextArea):
    """A TextArea whose Enter submits instead of inserting a newline."""

    class Submitted(Message):
        """The user pressed Enter."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self) -> None:
        super().__init__(id="prompt", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.placeholder = "Ask anything — Enter sends, Ctrl+J new line, F1 help"
        self.pasted: dict[str, str] = {}

    def expanded_text(self) -> str:
        """The text with every paste placeholder still present replaced by what was pasted."""
        text = self.text
        for marker, content in self.pasted.items():
            text = text.replace(marker, content)
        return text

    def clear(self) -> EditResult:
        """Empty the editor and forget large pastes."""
        self.pasted.clear()
        return super().clear()

    # Textual also runs TextArea's own handlers after these (it dispatches along the MRO)
    # unless prevent_default() is called, so these never call super().
    async def _on_paste(self, event: events.Paste) -> None:
        if len(event.text) <= LARGE_PASTE_CHARS:
            return
        event.stop()
        event.prevent_default()
        marker = f"[pasted text #{len(self.pasted) + 1}: {len(event.text):,} characters]"
        self.pasted[marker] = event.text
        self.insert(marker)

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self.expanded_text()))
            return
        if event.key in ("ctrl+j", "shift+enter"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
