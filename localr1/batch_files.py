"""`localr1 batch` files: prompts read from JSON Lines, results appended one whole line at a time.

A prompt line is an object with `prompt` (text) or `messages` (a list of {role, content}), an
optional `id` (a string or number; the line number by default) and an optional `system`.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localr1.engine.template import ChatMessage
from localr1.errors import ConfigError
from localr1.oserrors import file_system_error

ROLES = ("system", "user", "assistant")
UTF8_BOM = b"\xef\xbb\xbf"
RESULT_START = b'{"id": '  # how every line ResultsFile.append writes begins


@dataclass(frozen=True)
class PromptLine:
    """One prompt of the input file."""

    line: int
    id: str
    messages: list[ChatMessage]


def _messages(record: dict[str, Any]) -> list[ChatMessage]:
    """The conversation a prompt object describes; ValueError says what is wrong with it."""
    system = record.get("system")
    if system is not None and not isinstance(system, str):
        raise ValueError('"system" must be a string')
    if "prompt" in record:
        prompt = record["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError('"prompt" must be a non-empty string')
        turns = [ChatMessage("user", prompt)]
    elif "messages" in record:
        raw = record["messages"]
        if not isinstance(raw, list) or not raw:
            raise ValueError('"messages" must be a non-empty list')
        turns = []
        for item in raw:
            if not isinstance(item, dict) or item.get("role") not in ROLES or not isinstance(item.get("content"), str):
                raise ValueError('each message needs a "role" (system, user or assistant) and a string "content"')
            turns.append(ChatMessage(item["role"], item["content"]))
        if turns[-1].role != "user":
            raise ValueError("the last message must be the user's")
    else:
        raise ValueError('no "prompt" or "messages"')
    return ([ChatMessage("system", system)] if system else []) + turns


def parse_prompts(data: bytes) -> tuple[list[PromptLine], list[str]]:
    """Prompts of a JSON Lines file, and one problem per bad line ("line 3: not JSON ...")."""
    prompts: list[PromptLine] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    data = data.removeprefix(UTF8_BOM)  # Notepad and PowerShell write one; json refuses it
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            problems.append(f"line {number}: not UTF-8 (an invalid byte at position {exc.start})")
            continue
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(record, dict):
            problems.append(f"line {number}: a JSON {type(record).__name__}, not an object with a \"prompt\"")
            continue
        try:
            json.dumps(record, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            problems.append(f"line {number}: a \\u escape that is half of a UTF-16 pair (an unpaired surrogate), "
                            "not a character: fix the line")
            continue
        raw_id = record.get("id", number)
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
            problems.append(f'line {number}: "id" must be a string or a whole number')
            continue
        try:
            messages = _messages(record)
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        key = str(raw_id)
        if key in seen:
            problems.append(f"line {number}: id {key!r} is already used on line {seen[key]}")
            continue
        seen[key] = number
        prompts.append(PromptLine(number, key, messages))
    return prompts, problems


def read_prompts(path: Path) -> tuple[list[PromptLine], list[str]]:
    """Read and parse a prompts file (`-`: standard input is not supported: results need stable ids)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise file_system_error(exc, "read the prompts") from exc
    return parse_prompts(data)


class ResultsFile:
    """An append-only JSON Lines file of results; each result is one `write` of one whole line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: set[str] = set()
        self.notes: list[str] = []
        if path.exists() and not path.is_file():
            raise ConfigError(f"{path} is not a file; give the path of a results file")
        try:
            self._load_existing()
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise file_system_error(exc, "open the results") from exc

    def _load_existing(self) -> None:
        """Collect the ids already answered; cut a last line left unfinished by a crash."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data) and not data[complete:].startswith(RESULT_START):
            raise ConfigError(f"{self.path} does not end with a line end and its last line is not a localr1 batch "
                              "result: it is not a results file (left as it is); give another -o")
        if complete < len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(complete)
            self.notes.append(f"{self.path}: removed an unfinished last line (a run was stopped while writing it)")
        for number, raw in enumerate(data[:complete].split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                record = None
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                self.notes.append(f"{self.path} line {number}: not a result of localr1 batch; left as it is")
                continue
            self.done.add(record["id"])

    def append(self, record: dict[str, Any]) -> None:
        """Write one result as one line, in one system call (an interruption leaves it whole or absent)."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            written = os.write(self._fd, line)
            while written < len(line):  # only for huge lines on some file systems
                written += os.write(self._fd, line[written:])
        except OSError as exc:
            raise file_system_error(exc, "write the results", self.path) from exc
        self.done.add(record["id"])

    def close(self) -> None:
        """Flush to disk and close."""
        with contextlib.suppress(OSError):
            os.fsync(self._fd)
        os.close(self._fd)
