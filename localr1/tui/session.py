"""The open conversation: its messages, what is sent to the model, and saving while streaming."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from localr1.engine.events import Finished
from localr1.engine.template import ChatMessage
from localr1.errors import StoreError
from localr1.store import ConversationStore, StoredMessage
from localr1.store.conversations import Role, Status

SAVE_INTERVAL_S = 0.5  # a killed process loses at most this much of a streaming answer
STATUS_OF_STOP: dict[str, Status] = {"cancelled": "stopped", "error": "error", "length": "truncated"}


@dataclass
class Turn:
    """One message of the open conversation, mirrored in the store."""

    id: int
    role: Role
    content: str
    thinking: str = ""
    status: Status = "complete"


def _turn(m: StoredMessage) -> Turn:
    return Turn(m.id, m.role, m.content, m.thinking, m.status)


def title_from(text: str) -> str:
    """A conversation title from its first message."""
    line = " ".join(text.split())
    return (line[:48] + "…") if len(line) > 48 else (line or "New chat")


class ChatSession:
    """Messages of the current conversation and their persistence."""

    def __init__(self, store: ConversationStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self.conversation_id: int | None = None
        self.turns: list[Turn] = []  # a window of consecutive messages: the newest ones unless scrolled away
        self.has_older = False  # messages before the window may exist
        self.has_newer = False  # messages after the window exist (the window was opened around a search hit)
        self._last_save = 0.0

    def new(self) -> None:
        """Start an empty conversation (created in the store on the first message)."""
        self.conversation_id = None
        self.turns = []
        self.has_older = self.has_newer = False

    def open(self, conversation_id: int, limit: int, around: int | None = None) -> None:
        """Load the newest `limit` messages of a stored conversation, or about `limit` around message `around`."""
        self.conversation_id = conversation_id
        if around is None:
            before, after = self.store.messages(conversation_id, limit=limit), []
            self.has_newer = False
        else:
            before = self.store.messages(conversation_id, before_id=around + 1, limit=limit // 2 + 1)
            after = self.store.messages(conversation_id, after_id=around, limit=limit // 2)
            self.has_newer = len(after) == limit // 2
        self.has_older = len(before) == (limit if around is None else limit // 2 + 1)
        self.turns = [_turn(m) for m in (*before, *after)]

    def older(self, limit: int) -> list[Turn]:
        """Load up to `limit` messages before the window; returns them, oldest first."""
        if self.conversation_id is None or not self.turns:
            self.has_older = False
            return []
        turns = [_turn(m) for m in self.store.messages(self.conversation_id, before_id=self.turns[0].id, limit=limit)]
        self.has_older = len(turns) == limit
        self.turns[:0] = turns
        return turns

    def newer(self, limit: int) -> list[Turn]:
        """Load up to `limit` messages after the window; returns them, oldest first."""
        if self.conversation_id is None or not self.turns:
            self.has_newer = False
            return []
        turns = [_turn(m) for m in self.store.messages(self.conversation_id, after_id=self.turns[-1].id, limit=limit)]
        self.has_newer = len(turns) == limit
        self.turns.extend(turns)
        return turns

    def forget_oldest(self, count: int) -> None:
        """Drop `count` messages from the start of the window (they stay stored)."""
        if count > 0:
            del self.turns[:count]
            self.has_older = True

    def forget_newest(self, count: int) -> None:
        """Drop `count` messages from the end of the window (they stay stored)."""
        if count > 0:
            del self.turns[-count:]
            self.has_newer = True

    def newest_first(self, page: int = 50) -> Iterator[Turn]:
        """Every message from the conversation's end backwards: the window's, then older pages read on demand."""
        if self.conversation_id is None:
            return
        window = [] if self.has_newer else self.turns
        yield from reversed(window)
        if window and not self.has_older:
            return
        before = window[0].id if window else None
        while True:
            rows = self.store.messages(self.conversation_id, before_id=before, limit=page)
            yield from (_turn(m) for m in reversed(rows))
            if len(rows) < page:
                return
            before = rows[0].id

    def add_user(self, text: str, model: str | None) -> Turn:
        """Store a user message, creating the conversation if needed."""
        if self.conversation_id is None:
            self.conversation_id = self.store.create_conversation(title_from(text), model)
        turn = Turn(self.store.add_message(self.conversation_id, "user", text, model=model), "user", text)
        self.turns.append(turn)
        return turn

    def start_assistant(self, model: str | None) -> Turn:
        """Store an empty assistant message marked as streaming."""
        assert self.conversation_id is not None
        message_id = self.store.add_message(self.conversation_id, "assistant", "", status="streaming", model=model)
        turn = Turn(message_id, "assistant", "", status="streaming")
        self.turns.append(turn)
        self._last_save = self.clock()
        return turn

    def engine_messages(self) -> list[ChatMessage]:
        """What the model sees: the whole conversation's answers (thinking never goes back, so it is not
        read), no empty failed replies. Read from the store: the window may hold only the newest messages."""
        if self.conversation_id is None:
            return []
        history = self.store.prompt_history(self.conversation_id)
        return [ChatMessage(role, content) for role, content in history if role == "user" or content.strip()]

    def stream(self, turn: Turn, thinking: str, answer: str) -> bool:
        """Add streamed text; saves at most every SAVE_INTERVAL_S. Returns True when it saved."""
        turn.thinking += thinking
        turn.content += answer
        now = self.clock()
        if now - self._last_save < SAVE_INTERVAL_S:
            return False
        try:
            self.store.update_message(turn.id, content=turn.content, thinking=turn.thinking, status="streaming")
        except StoreError:
            return False  # locked or full for now: the text stays here and the next save retries
        self._last_save = now
        return True

    def finish(self, turn: Turn, finished: Finished | None, error: str | None = None, *,
               status: Status = "error") -> Status:
        """Save the final texts, status and stats of an assistant turn.

        Without a Finished event the turn's own text is kept with `status` (an error, or stopped on exit).
        """
        if finished is not None:
            turn.content, turn.thinking = finished.answer, finished.thinking
            status = STATUS_OF_STOP.get(finished.stats.stop_reason, "complete")
            stats = asdict(finished.stats)
        else:
            stats = {}
        if error:
            stats["error"] = error
        turn.status = status
        self.store.update_message(turn.id, content=turn.content, thinking=turn.thinking, status=status, stats=stats)
        return status

    def replace_user_text(self, turn: Turn, text: str) -> None:
        """Store a trimmed version of a user message."""
        turn.content = text
        self.store.update_message(turn.id, content=text, thinking="", status="complete")

    def pop_last_assistant(self) -> Turn | None:
        """Remove the last answer (for regenerate)."""
        if self.turns and self.turns[-1].role == "assistant":
            turn = self.turns.pop()
            self.store.delete_message(turn.id)
            return turn
        return None

    def pop_last_exchange(self) -> Turn | None:
        """Remove the last user message and the answer after it (for edit and resend)."""
        self.pop_last_assistant()
        if self.turns and self.turns[-1].role == "user":
            turn = self.turns.pop()
            self.store.delete_message(turn.id)
            return turn
        return None
