"""Answers kept as they finish: one JSON line per (settings, model file, problem, sample) in OUT_DIR.

Each line is written with one `write` on an append-only descriptor and flushed to disk before the next
answer starts, so a killed run loses at most the answer in progress. A torn last line (the process died
inside the write) is cut off when the file is next opened for appending; a re-run skips every key present.
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any

from localr1.oserrors import os_errors

ANSWERS_NAME = "task-answers.jsonl"
Key = tuple[str, str, str, int]  # settings hash, model sha256, problem id, sample


@dataclass(frozen=True)
class AnswerRecord:
    """One generated answer: what was asked of which file, what came back, and what it cost."""

    settings: str
    model_sha256: str
    problem: str
    sample: int
    model: str
    answer: str
    thinking_tokens: int
    tokens: int
    seconds: float
    stop: str
    thinking_cut_off: bool
    run: str
    created: str
    thinking_closed: bool = False  # the thinking budget or the loop guard ended the thinking (absent before)
    parallel: int = 1  # most sequences decoded together with this one (absent before: one at a time)

    @property
    def key(self) -> Key:
        """What makes an answer the same answer on a re-run."""
        return (self.settings, self.model_sha256, self.problem, self.sample)


_FIELDS = {f.name for f in fields(AnswerRecord)}
_REQUIRED = {f.name for f in fields(AnswerRecord) if f.default is MISSING}


def _parse(line: bytes) -> AnswerRecord | None:
    try:
        raw: Any = json.loads(line)
        if not isinstance(raw, dict) or not set(raw) >= _REQUIRED:
            return None
        record = AnswerRecord(**{k: raw[k] for k in _FIELDS & set(raw)})
    except (ValueError, TypeError):
        return None
    return record if isinstance(record.sample, int) and isinstance(record.answer, str) else None


def read_records(path: Path) -> tuple[dict[Key, AnswerRecord], int]:
    """Every whole record in the file (a later line wins) and how many lines were unreadable."""
    if not path.is_file():
        return {}, 0
    with os_errors("read", path):
        data = path.read_bytes()
    records: dict[Key, AnswerRecord] = {}
    bad = 0
    lines = data.split(b"\n")
    complete = lines[:-1]  # what follows the last newline is a torn write, never a record
    for line in complete:
        if not line.strip():
            continue
        record = _parse(line)
        if record is None:
            bad += 1
        else:
            records[record.key] = record
    return records, bad


class RecordWriter:
    """Appends records to the answers file, each one whole and on disk before `append` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with os_errors("write", path):
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            self._cut_torn_tail()

    def _cut_torn_tail(self) -> None:
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        end = size
        while end > 0:
            chunk = os.pread(self._fd, min(4096, end), end - min(4096, end))
            index = chunk.rfind(b"\n")
            if index >= 0:
                end = end - len(chunk) + index + 1
                break
            end -= len(chunk)
        if end != size:
            os.ftruncate(self._fd, end)

    def append(self, record: AnswerRecord) -> None:
        """Write one record as one line and flush it to disk."""
        line = (json.dumps(asdict(record), ensure_ascii=False) + "\n").encode("utf-8")
        with os_errors("write", self.path):
            written = os.write(self._fd, line)
            while written < len(line):  # a short write (a signal): finish the line
                written += os.write(self._fd, line[written:])
            os.fsync(self._fd)

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
