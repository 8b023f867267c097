"""Final-answer extraction and comparison over a table of tricky replies."""

from __future__ import annotations

import pytest

from quantize.quality.tasks.answers import (
    Kind,
    extract,
    grade,
    infer_kind,
    last_boxed,
    parse_number,
    vote_key,
)

# (reply's answer part, expected, kind, what must be extracted (None: nothing), right?)
CASES: list[tuple[str, str, Kind, str | None, bool]] = [
    # boxed answers, nested braces, the last one wins
    (r"So the result is \boxed{\frac{1}{2}}.", "0.5", "number", r"\frac{1}{2}", True),
    (r"\boxed{\dfrac{3}{4}}", "3/4", "number", r"\dfrac{3}{4}", True),
    (r"\boxed{\frac{\sqrt{4}}{2}} hmm, no: \boxed{\frac{1}{2}}", "1/2", "number", r"\frac{1}{2}", True),
    (r"first \boxed{7}, then corrected: \boxed{{8}}", "8", "number", "{8}", True),
    (r"\boxed{x = \frac{-1}{2}}", "-0.5", "number", r"x = \frac{-1}{2}", True),
    (r"\boxed{-\frac{1}{2}}", "-1/2", "number", r"-\frac{1}{2}", True),
    (r"The answer is \boxed 5.", "5", "number", "5.", True),
    (r"\fbox{42}", "42", "number", "42", True),
    # an empty box is no answer: the last number is
    (r"100 + 200 = 300\n\nThe answer is within \boxed{}.", "300", "number", "300", True),
    # an unclosed box (cut off) is ignored
    (r"It is 12. Final: \boxed{13", "12", "number", "13", False),
    # thousands separators, units, money, percent, degrees
    (r"\boxed{1,234}", "1234", "number", "1,234", True),
    (r"\boxed{1{,}234{,}567}", "1234567", "number", "1{,}234{,}567", True),
    (r"\boxed{12 \text{ apples}}", "12", "number", r"12 \text{ apples}", True),
    (r"\boxed{\$12.50}", "12.5", "number", r"\$12.50", True),
    (r"\boxed{45\text{ km/h}}", "45 km/h", "number", r"45\text{ km/h}", True),
    (r"\boxed{50\%}", "0.5", "number", r"50\%", True),
    (r"\boxed{50\%}", "50", "number", r"50\%", True),
    (r"\boxed{0.25}", "25%", "number", "0.25", True),
    (r"\boxed{90^\circ}", "90", "number", r"90^\circ", True),
    (r"\boxed{2 1/2}", "5/2", "number", "2 1/2", True),
    (r"\boxed{1.5 \times 10^{3}}", "1500", "number", r"1.5 \times 10^{3}", True),
    (r"\boxed{0.33}", "1/3", "number", "0.33", True),
    (r"\boxed{0.3}", "1/3", "number", "0.3", False),
    (r"\boxed{0.66}", "2/3", "number", "0.66", False),
    (r"\boxed{12}", "12.0", "number", "12", True),
    (r"\boxed{12.4}", "12", "number", "12.4", False),
    (r"\boxed{The answer is 7}", "7", "number", "The answer is 7", True),
    # no box: the last number of the answer
    ("7 + 5 = 12\n\nSo, the answer is 12.", "12", "number", "12", True),
    ("The answer is 1/2.", "0.5", "number", "1/2", True),
    ("10 - 4 = 2", "6", "number", "2", False),
    ("We subtract: 10 - 4", "4", "number", "4", True),
    ("It costs $1,250 in total.", "1250", "number", "1,250", True),
    ("So half of it, $\\frac{1}{2}$, is left.", "1/2", "number", r"\frac{1}{2}", True),
    ("The temperature is −5 degrees.", "-5", "number", "-5", True),
    ("That is 25% of the total.", "0.25", "number", "25%", True),
    # a boxed answer inside the thinking is never taken
    (r"<think>maybe \boxed{5}</think>The sum is 7.", "5", "number", "7", False),
    (r"<think>maybe \boxed{5}</think>The sum is 7.", "7", "number", "7", True),
    # no answer at all
    ("I am not sure how to solve this.", "3", "number", None, False),
    ("", "3", "number", None, False),
    # choices by letter
    (r"\boxed{B}", "B", "choice", "B", True),
    (r"\boxed{\text{(C)}}", "C", "choice", r"\text{(C)}", True),
    (r"\boxed{B) red}", "(B)", "choice", "B) red", True),
    ("Comparing them, the answer is (D).", "D", "choice", "D", True),
    ("A) 3 is too small, B) 5 fits. The answer is A.", "B", "choice", "A", False),
    ("The options were A) dog and B) red, so **B**", "B", "choice", "B", True),
    ("None of these look right.", "A", "choice", None, False),
    # text, normalised
    (r"\boxed{\text{Paris}}", "paris", "text", r"\text{Paris}", True),
    ("The capital of France is Paris.", "Paris", "text", "The capital of France is Paris.", True),
    ("Final answer: the Pacific Ocean", "Pacific ocean", "text", "the Pacific Ocean", True),
    (r"\boxed{London}", "Paris", "text", "London", False),
]


@pytest.mark.parametrize(("reply", "expected", "kind", "found", "right"), CASES)
def test_extract_and_compare(reply: str, expected: str, kind: Kind, found: str | None, right: bool) -> None:
    extracted, correct = grade(reply.replace("\\n", "\n"), expected, kind)
    assert (extracted.text if extracted else None) == found
    assert correct is right


@pytest.mark.parametrize(("text", "value"), [
    ("1/2", "1/2"), ("0.5", "1/2"), (r"\frac{1}{2}", "1/2"), (r"\dfrac12", "1/2"), ("1,234", "1234"),
    ("12 apples", "12"), ("x = 3", "3"), ("-7", "-7"), ("+7", "7"), ("3e2", "300"), ("$4.20", "21/5"),
])
def test_parse_number(text: str, value: str) -> None:
    number = parse_number(text)
    assert number is not None and str(number.value) == value


@pytest.mark.parametrize("text", ["twelve", "1, 2 and 3", "B", "1/0", "", "3x + 2"])
def test_not_a_number(text: str) -> None:
    assert parse_number(text) is None


def test_boxed_with_escaped_braces() -> None:
    assert last_boxed(r"\boxed{\{1, 2\}}") == r"\{1, 2\}"


@pytest.mark.parametrize(("expected", "kind"), [
    ("12", "number"), ("-0.5", "number"), (r"\frac{1}{2}", "number"), ("50%", "number"), ("B", "choice"),
    ("(C)", "choice"), ("Paris", "text"), ("blue whale", "text"),
])
def test_infer_kind(expected: str, kind: Kind) -> None:
    assert infer_kind(expected) == kind


def test_vote_keys_agree_across_spellings() -> None:
    keys = {vote_key(extract(reply, "number"), "number") for reply in
            (r"\boxed{\frac{1}{2}}", "so it is 0.5", r"\boxed{1/2}")}
    assert keys == {"1/2"}
    assert vote_key(extract("nothing here", "number"), "number") is None
    assert vote_key(extract(r"\boxed{(b)}", "choice"), "choice") == "B"
