"""Calibration conversations and held-out text: loading them, and rendering conversations with the model's template."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localr1.engine.template import ChatMessage, RenderedPrompt, Role, render
from localr1.ggufinfo import GGUFInfo
from quantize.errors import CalibrationError

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEFAULT_CALIBRATION = DATA_DIR / "calibration.json"
DEFAULT_HELDOUT = DATA_DIR / "heldout.txt"
_MARKER = "\u27e6localr1-reply\u27e7"
_ROLES: tuple[Role, ...] = ("system", "user", "assistant")


@dataclass(frozen=True)
class Turn:
    """One message of a calibration conversation; assistant turns may carry their reasoning."""

    role: Role
    content: str
    thinking: str = ""


Conversation = list[Turn]


@dataclass(frozen=True)
class CalibrationSet:
    """Calibration input: chat conversations (JSON) or plain text, with the hash of the file it came from."""

    source: str
    sha256: str
    conversations: list[Conversation]
    text: str | None = None


def _turn(raw: Any, where: str) -> Turn:
    if not isinstance(raw, dict) or raw.get("role") not in _ROLES or not isinstance(raw.get("content"), str):
        raise CalibrationError(f"{where}: each message needs a role (system/user/assistant) and a content string")
    thinking = raw.get("thinking", "")
    return Turn(raw["role"], raw["content"], thinking if isinstance(thinking, str) else "")


def parse_conversations(data: Any, source: str) -> list[Conversation]:
    """Conversations from `{"conversations": [{"messages": [...]}, ...]}`."""
    items = data.get("conversations") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise CalibrationError(f"{source}: expected a JSON object with a non-empty 'conversations' list")
    conversations: list[Conversation] = []
    for i, item in enumerate(items):
        messages = item.get("messages") if isinstance(item, dict) else None
        if not isinstance(messages, list) or not messages:
            raise CalibrationError(f"{source}: conversation {i} has no 'messages' list")
        conversations.append([_turn(m, f"{source}: conversation {i}") for m in messages])
    return conversations


def load_calibration(path: Path | None = None) -> CalibrationSet:
    """The shipped conversations, or a user's file: .json conversations, anything else plain UTF-8 text."""
    path = path or DEFAULT_CALIBRATION
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CalibrationError(f"cannot read the calibration file {path}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CalibrationError(f"the calibration file {path} is not UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CalibrationError(
                f"the calibration file {path} is not valid JSON: {exc.msg} (line {exc.lineno})"
            ) from None
        return CalibrationSet(str(path), digest, parse_conversations(data, path.name))
    if not text.strip():
        raise CalibrationError(f"the calibration file {path} is empty")
    return CalibrationSet(str(path), digest, [], text=text)


def load_heldout(path: Path | None = None) -> tuple[str, str]:
    """Held-out text for evaluation and its sha256."""
    path = path or DEFAULT_HELDOUT
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CalibrationError(f"cannot read the held-out text {path}: {exc.strerror or exc}") from None
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        raise CalibrationError(f"the held-out text {path} is empty")
    return text, hashlib.sha256(raw).hexdigest()


def _is_reasoning(info: GGUFInfo) -> bool:
    return info.is_r1 or "<think>" in (info.chat_template or "")


def render_conversation(info: GGUFInfo, conversation: Conversation) -> str:
    """The conversation as the model sees and writes it: earlier turns through the template, the last reply
    (with its reasoning, for a reasoning model) where the model would generate it."""
    last = max((i for i, t in enumerate(conversation) if t.role == "assistant"), default=-1)
    history = conversation[:last] if last >= 0 else conversation
    messages = [ChatMessage(t.role, t.content) for t in history]
    def rendered(turns: list[ChatMessage], add_generation_prompt: bool) -> RenderedPrompt:
        return render(info.chat_template, turns, bos_token=info.bos_token, eos_token=info.eos_token,
                      r1_rules=info.is_r1, add_generation_prompt=add_generation_prompt)

    prompt = rendered(messages, True)
    if last < 0:
        return prompt.text
    reply = conversation[last]
    framed = rendered([*messages, ChatMessage("assistant", _MARKER)], False).text
    before, _, after = framed.partition(_MARKER)
    block = f"<think>\n{reply.thinking.strip()}\n</think>\n\n" if _is_reasoning(info) else ""
    if before and prompt.text.startswith(before):
        opened = prompt.text[len(before):]  # what the generation prompt already opened, e.g. "<think>\n"
        if block.startswith(opened):
            return prompt.text + block[len(opened):] + reply.content + after
    return before + block + reply.content + after
