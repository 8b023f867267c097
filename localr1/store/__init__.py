"""Conversations in SQLite: schema migrations, the repository, and exports."""

from localr1.store.conversations import Conversation, ConversationStore, SearchHit, StoredMessage

__all__ = ["Conversation", "ConversationStore", "SearchHit", "StoredMessage"]
