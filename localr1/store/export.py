"""Export a conversation as Markdown and JSON files, written atomically."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

from localr1.atomic_write import write_atomic
from localr1.oserrors import ensure_folder, os_errors
from localr1.store.conversations import Conversation, ConversationStore, StoredMessage

EXPORT_NOTES = {
    "stopped": "\n\n_(stopped)_",
    "interrupted": "\n\n_(stopped)_",
    "truncated": "\n\n_(cut off at the token limit)_",
}


def to_markdown(conversation: Conversation, messages: list[StoredMessage]) -> str:
    """A readable transcript; thinking goes in a collapsible <details> block."""
    parts = [f"# {conversation.title}\n"]
    if conversation.model:
        parts.append(f"_model: {conversation.model}_\n")
    for m in messages:
        parts.append(f"## {m.role.capitalize()}\n")
        if m.thinking:
            parts.append(f"<details><summary>Thinking</summary>\n\n{m.thinking}\n\n</details>\n")
        parts.append(m.content + EXPORT_NOTES.get(m.status, "") + "\n")
    return "\n".join(parts)


def to_json(conversation: Conversation, messages: list[StoredMessage]) -> str:
    """Everything stored, as JSON."""
    return json.dumps({**asdict(conversation), "messages": [asdict(m) for m in messages]},
                      ensure_ascii=False, indent=2)


def _slug(title: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:60] or "conversation"


def export_conversation(store: ConversationStore, conversation_id: int, folder: Path) -> tuple[Path, Path]:
    """Write NAME.md and NAME.json into folder; returns both paths. A file error is a one-line FileSystemError."""
    conversation = store.conversation(conversation_id)
    if conversation is None:
        raise KeyError(conversation_id)
    messages = store.messages(conversation_id)
    ensure_folder(folder, "exports folder")
    stem = f"{conversation.id:04d}-{_slug(conversation.title)}"
    md, js = folder / f"{stem}.md", folder / f"{stem}.json"
    for path, text in ((md, to_markdown(conversation, messages)), (js, to_json(conversation, messages))):
        with os_errors("write", path):
            write_atomic(path, text)
    return md, js
