"""Answer grading against hostile text: a model's reply or a problem file with an absurd exponent."""

from __future__ import annotations

import subprocess
import sys

GRADE = """
from quantize.quality.tasks.answers import grade, parse_number
assert parse_number("1e99999999") is None and parse_number("2.5e-99999999") is None
assert parse_number("1e300") is not None
print(grade("The answer is 5, or 1e99999999", "5", "number")[1], grade("It is 7.0e99999999.", "7", "number")[1])
"""


def test_a_huge_exponent_is_not_a_number_and_grading_stays_quick() -> None:
    # in a child with a deadline: before the fix, building 10**99999999 as a Fraction ran for minutes
    done = subprocess.run([sys.executable, "-c", GRADE], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]  # an absurd number is skipped: 5 is the last readable one


PROBLEMS = """
from quantize.errors import TaskFileError
from quantize.quality.tasks.problems import parse_problems
try:
    parse_problems(b'{"question": "a", "answer": 1}\\n{"question": "b", "answer": "1e99999999", "kind": "number"}\\n',
                   "p.jsonl")
except TaskFileError as exc:
    print(exc)
"""


def test_a_problem_whose_answer_has_a_huge_exponent_is_a_bad_line() -> None:
    done = subprocess.run([sys.executable, "-c", PROBLEMS], capture_output=True, text=True, timeout=30, check=False)
    assert done.stdout.strip() == "p.jsonl line 2: the answer '1e99999999' is not a number (give kind \"text\" to " \
        "compare it as text)", done.stderr
