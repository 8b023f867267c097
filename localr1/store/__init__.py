"""Conversations in SQLite: schema migrations, the repository, search and exports."""

from localr1.store.conversations import Conversation, ConversationStore, StoredMessage
from localr1.store.search import SearchHit

__all__ = ["Conversation", "ConversationStore", "SearchHit", "StoredMessage"]
