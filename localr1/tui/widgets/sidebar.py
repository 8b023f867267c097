"""The list of conversations."""

from __future__ import annotations

from textual.widgets import ListItem, ListView, Static

from localr1.store import Conversation


class ConversationItem(ListItem):
    """One conversation in the sidebar."""

    def __init__(self, conversation: Conversation) -> None:
        super().__init__(Static(conversation.title, markup=False))
        self.conversation = conversation


class Sidebar(ListView):
    """Conversations, most recent first; select one to open it."""

    def __init__(self) -> None:
        super().__init__(id="sidebar")

    async def show(self, conversations: list[Conversation], current: int | None) -> None:
        """Replace the list and highlight the current conversation."""
        await self.clear()
        await self.extend([ConversationItem(c) for c in conversations])
        for index, conversation in enumerate(conversations):
            if conversation.id == current:
                self.index = index
