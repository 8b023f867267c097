"""Problem sets: JSON Lines of `{"question": ..., "answer": ..., "kind": "number" | "choice" | "text"}`.

Every line is checked before any model runs; a bad one is a one-line error with its line number. A problem is
known by the hash of its question (what the model sees), so fixing an expected answer keeps the answers given.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantize.errors import TaskFileError
from quantize.quality.tasks.answers import KINDS, Kind, infer_kind, parse_choice, parse_number

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
SHIPPED_PROBLEMS = DATA_DIR / "problems.jsonl"
MAX_QUESTION_CHARS = 20_000


@dataclass(frozen=True)
class Problem:
    """One question with its exact answer."""

    id: str
    question: str
    answer: str
    kind: Kind
    line: int


@dataclass(frozen=True)
class ProblemSet:
    """The problems of one file, in file order, with the file's sha256."""

    problems: list[Problem]
    source: str
    sha256: str
    total: int  # problems in the file (more than len(problems) under --limit)


def problem_id(question: str) -> str:
    """A stable name for a question: the first 16 hex digits of its sha256."""
    return hashlib.sha256(question.encode("utf-8")).hexdigest()[:16]


def _problem(raw: Any, line: int) -> Problem:
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object with 'question' and 'answer'")
    question, answer, kind = raw.get("question"), raw.get("answer"), raw.get("kind")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("'question' must be a non-empty string")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(f"the question is over {MAX_QUESTION_CHARS} characters")
    if isinstance(answer, bool) or not isinstance(answer, str | int | float) or not str(answer).strip():
        raise ValueError("'answer' must be a non-empty string or a number")
    answer = str(answer).strip()
    if kind is None:
        kind = infer_kind(answer)
    elif kind not in KINDS:
        raise ValueError(f"'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "number" and parse_number(answer) is None:
        raise ValueError(f"the answer {answer!r} is not a number (give kind \"text\" to compare it as text)")
    if kind == "choice" and parse_choice(answer) is None:
        raise ValueError(f"the answer {answer!r} is not a choice letter A to H")
    return Problem(problem_id(question), question, answer, kind, line)


def parse_problems(data: bytes, source: str) -> list[Problem]:
    """Every problem of a JSON Lines file; the first bad line raises TaskFileError."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TaskFileError(f"{source} is not UTF-8 text (a bad byte at position {exc.start}); "
                            "save it as UTF-8") from None
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            problem = _problem(json.loads(line), number)
        except (ValueError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
            reason = f"not JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise TaskFileError(f"{source} line {number}: {reason}") from None
        if problem.id in seen:
            raise TaskFileError(f"{source} line {number}: the same question as line {seen[problem.id]}; "
                                "remove one of them")
        seen[problem.id] = number
        problems.append(problem)
    if not problems:
        raise TaskFileError(f"{source} holds no problems: one JSON object per line, e.g. "
                            '{"question": "What is 2 + 3?", "answer": 5}')
    return problems


def load_problems(path: Path | None = None, limit: int | None = None) -> ProblemSet:
    """The problems of a file (default: the set shipped with localr1), the first `limit` of them when given."""
    path = path or SHIPPED_PROBLEMS
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TaskFileError(f"cannot read the problem set {path}: {exc.strerror or exc}") from None
    problems = parse_problems(data, str(path))
    chosen = problems[:limit] if limit is not None else problems
    return ProblemSet(chosen, str(path), hashlib.sha256(data).hexdigest(), len(problems))
