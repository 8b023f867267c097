"""Problem sets: the shipped one is what its generator writes; a bad line is a one-line error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantize.errors import TaskFileError
from quantize.quality.tasks.answers import grade
from quantize.quality.tasks.generator import COUNT, SEED, generate, to_jsonl
from quantize.quality.tasks.problems import SHIPPED_PROBLEMS, load_problems, problem_id


def test_shipped_set_is_the_generators_output() -> None:
    assert SHIPPED_PROBLEMS.read_text(encoding="utf-8") == to_jsonl(generate(SEED, COUNT))


def test_generator_is_seeded() -> None:
    assert generate(3, 10) == generate(3, 10)
    assert generate(3, 10) != generate(4, 10)


def test_shipped_set_loads_with_every_kind_and_answers_itself() -> None:
    problems = load_problems().problems
    assert len(problems) == COUNT
    assert {p.kind for p in problems} == {"number", "choice", "text"}
    assert {p.kind for p in problems[:28]} == {"number", "choice", "text"}  # a prefix covers every kind
    for p in problems:
        assert grade(f"so it is \\boxed{{{p.answer}}}", p.answer, p.kind)[1], p


def test_spot_checked_answers() -> None:
    by_question = {p.question: p.answer for p in load_problems().problems}
    assert by_question["What is 6023 + 7787?"] == "13810"
    assert by_question["What is 1/2 + 1/5? Give the answer as a fraction in lowest terms."] == "7/10"
    assert by_question["What is the remainder when 7^18 is divided by 11?"] == str(pow(7, 18, 11))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_own_set_with_inferred_kinds_and_limit(tmp_path: Path) -> None:
    path = write(tmp_path, '{"question": "2+3?", "answer": 5}\n\n{"question": "Pick", "answer": "B"}\n'
                           '{"question": "Capital of France?", "answer": "Paris", "extra": 1}\n')
    loaded = load_problems(path)
    assert [(p.kind, p.answer, p.line) for p in loaded.problems] == [
        ("number", "5", 1), ("choice", "B", 3), ("text", "Paris", 4)]
    assert loaded.problems[0].id == problem_id("2+3?")
    limited = load_problems(path, limit=2)
    assert len(limited.problems) == 2 and limited.total == 3 and limited.sha256 == loaded.sha256


@pytest.mark.parametrize(("text", "message"), [
    ('{"question": "a", "answer": 1}\n{"question": "b"\n', "line 2: not JSON"),
    ('["a", 1]\n', "line 1: expected a JSON object"),
    ('{"question": "", "answer": 1}\n', "line 1: 'question' must be a non-empty string"),
    ('{"question": "a", "answer": true}\n', "line 1: 'answer' must be"),
    ('{"question": "a", "answer": 1, "kind": "essay"}\n', "line 1: 'kind' must be one of number, choice, text"),
    ('{"question": "a", "answer": "many", "kind": "number"}\n', "line 1: the answer 'many' is not a number"),
    ('{"question": "a", "answer": "Z", "kind": "choice"}\n', "line 1: the answer 'Z' is not a choice letter"),
    ('{"question": "a", "answer": 1}\n{"question": "a", "answer": 2}\n', "line 2: the same question as line 1"),
    ("\n\n", "holds no problems"),
])
def test_bad_lines(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TaskFileError, match=message) as caught:
        load_problems(write(tmp_path, text))
    assert "\n" not in str(caught.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match="cannot read the problem set"):
        load_problems(tmp_path / "none.jsonl")
    path = tmp_path / "bin.jsonl"
    path.write_bytes(b'{"question": "\xff", "answer": 1}\n')
    with pytest.raises(TaskFileError, match="not UTF-8"):
        load_problems(path)
