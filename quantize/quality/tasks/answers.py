"""Final answers: pulled out of a reply's answer part (never its thinking) and compared with the expected one.

The last non-empty `\\boxed{...}` wins (nested braces allowed); without one, the last number or choice letter
of the answer. Numbers compare as numbers (`1/2`, `0.5`, `\\frac{1}{2}`, `50%`, `1,234`, units dropped),
choices by letter, text after normalisation (case, punctuation, articles).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Literal

Kind = Literal["number", "choice", "text"]
KINDS: tuple[Kind, ...] = ("number", "choice", "text")
THINK_CLOSE = "</think>"
_BOX_COMMANDS = ("\\boxed", "\\fbox")
_MIN_ROUNDED_PLACES = 2  # 0.33 answers 1/3; 0.3 does not
_MAX_EXPONENT = 4300  # Python's own limit on digits in a number read from text


def answer_part(reply: str) -> str:
    """The text after the last `</think>`: a reply whose thinking reached the answer unparsed still loses it."""
    index = reply.rfind(THINK_CLOSE)
    return reply[index + len(THINK_CLOSE):] if index >= 0 else reply


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group opening at text[start] and the index after it; None when unclosed."""
    depth = 0
    for i in range(start, len(text)):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
            continue
        if char == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif char == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last non-empty, closed `\\boxed{...}` (or `\\fbox{...}`, or `\\boxed 5`)."""
    starts = sorted((m.start(), m.end()) for command in _BOX_COMMANDS
                    for m in re.finditer(re.escape(command) + r"(?![A-Za-z])", text))
    for _, end in reversed(starts):
        rest = len(text[end:]) - len(text[end:].lstrip())
        position = end + rest
        if position < len(text) and text[position] == "{":
            group = _braced(text, position)
            content = group[0] if group else ""
        else:  # `\boxed 5`: one token
            match = re.match(r"\s+([^\s$]+)", text[end:])
            content = match.group(1) if match else ""
        if content.strip():
            return content.strip()
    return None


# --- numbers ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A parsed number: its exact value, whether it carried `%`, and its decimal places when written as one."""

    value: Fraction
    percent: bool = False
    places: int | None = None


_TEXT_COMMANDS = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_DROPPED = re.compile(r"\\left|\\right|\\[,;!: ]|\\displaystyle|\^\s*\{?\\circ\}?|°|\$|\\\$|\\quad")


def clean_latex(text: str) -> str:
    """Plain text out of the LaTeX an answer is written in: fractions kept, dressing dropped."""
    text = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = text.replace("{,}", ",").replace("\\%", "%")
    previous = None
    while previous != text:  # nested \text{\textbf{x}}
        previous, text = text, _TEXT_COMMANDS.sub(r" \1 ", text)
    return _DROPPED.sub(" ", text)


_PLAIN = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_SIGNED = rf"[-+]?\s*{_PLAIN}"
_NUMBER = re.compile(
    rf"(?<![\w.])(?P<sign>[-+])?(?:"
    rf"(?P<whole>\d+)?\s*\\frac\s*(?:\{{\s*(?P<num>{_SIGNED})\s*\}}\s*\{{\s*(?P<den>{_SIGNED})\s*\}}"
    rf"|(?P<num1>\d)(?P<den1>\d))"
    rf"|(?P<sn>{_PLAIN})\s*/\s*(?P<sd>{_PLAIN})(?!\d|\.\d)"
    rf"|(?P<mant>{_PLAIN})\s*(?:\\times|\\cdot|x|×)\s*10\s*\^\s*\{{?\s*(?P<exp>[-+]?\d+)\s*\}}?"
    rf"|(?P<plain>{_PLAIN})(?:[eE](?P<e>[-+]?\d+))?"
    rf")(?P<pct>\s*%)?"
)
_MIXED = re.compile(r"(\d+)\s+(\d+)\s*/\s*(\d+)")  # 2 1/2
_UNIT_TAIL = r"(?:\s*[A-Za-zµ][A-Za-z0-9µ²³^/.\s\-]*)?"


def _plain(text: str) -> tuple[Fraction, int | None]:
    digits = re.sub(r"\s", "", text).replace(",", "")
    places = len(digits.split(".", 1)[1]) if "." in digits else None
    return Fraction(digits), places


def _power_of_ten(exponent: str) -> Fraction:
    """10 ** exponent, refused past _MAX_EXPONENT: `1e99999999` would take minutes and gigabytes as a Fraction."""
    power = int(exponent)
    if abs(power) > _MAX_EXPONENT:
        raise OverflowError(f"exponent {power} is out of range")
    return Fraction(10) ** power


def _from_match(m: re.Match[str]) -> Number | None:
    sign = -1 if m.group("sign") == "-" else 1
    places = None
    try:
        if m.group("num") is not None or m.group("num1") is not None:
            num = _plain(m.group("num") or m.group("num1"))[0]
            den = _plain(m.group("den") or m.group("den1"))[0]
            if den == 0:
                return None
            value = num / den
            if m.group("whole"):
                value = int(m.group("whole")) + value
        elif m.group("sn") is not None:
            den = _plain(m.group("sd"))[0]
            if den == 0:
                return None
            value = _plain(m.group("sn"))[0] / den
        elif m.group("mant") is not None:
            value = _plain(m.group("mant"))[0] * _power_of_ten(m.group("exp"))
        else:
            value, places = _plain(m.group("plain"))
            if m.group("e"):
                value, places = value * _power_of_ten(m.group("e")), None
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return Number(sign * value, percent=bool(m.group("pct")), places=places)


def parse_number(text: str) -> Number | None:
    """A whole answer read as one number (`x = 1/2`, `\\frac{1}{2}`, `$1,234.50`, `12 apples`, `50%`); None if not."""
    text = clean_latex(text).strip()
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    text = text.strip().rstrip(".").strip()
    mixed = _MIXED.fullmatch(text)
    if mixed:
        whole, num, den = (int(g) for g in mixed.groups())
        return Number(Fraction(whole) + Fraction(num, den)) if den else None
    m = _NUMBER.match(text)
    if m is None or m.start() != 0 or not re.fullmatch(_UNIT_TAIL, text[m.end():]):
        return None
    return _from_match(m)


def last_number(text: str) -> tuple[str, Number] | None:
    """The last number written anywhere in a text, and how it was written."""
    cleaned = clean_latex(text)
    found = None
    for m in _NUMBER.finditer(cleaned):
        number = _from_match(m)
        if number is not None:
            found = (m.group(0).strip(), number)
    return found


def _rounded(value: Fraction, places: int) -> Fraction:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return Fraction(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def numbers_match(got: Number, expected: Number) -> bool:
    """Equal values; `50%` against 0.5; a decimal of 2+ places against the other side rounded to as many."""
    if got.value == expected.value:
        return True
    if got.percent != expected.percent:
        percent, other = (got, expected) if got.percent else (expected, got)
        if percent.value / 100 == other.value:
            return True
    for rounded, exact in ((got, expected), (expected, got)):
        places = rounded.places
        if places is not None and places >= _MIN_ROUNDED_PLACES and _rounded(exact.value, places) == rounded.value:
            return True
    return False


# --- choices and text --------------------------------------------------------------------------------------------

_LETTER = "A-H"  # not I: "the answer is I think..."
_CHOICE_ALONE = re.compile(rf"^\s*[(\[]?\s*([{_LETTER}a-h])\s*[)\]]?\s*(?:[.:)]\s*.*)?$", re.DOTALL)
_CHOICE_STATED = re.compile(
    rf"(?i:answer|option|choice)\s*(?i:is|:|=)?\s*(?:\*\*)?\s*[(\[]?([{_LETTER}])\b(?![-'])")
_CHOICE_MARKED = re.compile(
    rf"\(([{_LETTER}])\)|(?<![\w(])([{_LETTER}])\)|\*\*\(?([{_LETTER}])\)?\*\*|^\s*([{_LETTER}])[.)]?\s*$",
    re.MULTILINE)


def parse_choice(text: str) -> str | None:
    """A whole answer read as one choice letter (`B`, `(b)`, `B) red`, `\\text{B}`)."""
    m = _CHOICE_ALONE.match(clean_latex(text))
    return m.group(1).upper() if m else None


def last_choice(text: str) -> str | None:
    """The chosen letter in free text: the last "answer is X", else the last marked letter ("(B)", "B)", "**B**")."""
    stated = list(_CHOICE_STATED.finditer(text))
    if stated:
        return stated[-1].group(1)
    marked = list(_CHOICE_MARKED.finditer(text))
    if not marked:
        return None
    return next(g for g in marked[-1].groups() if g)


_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def normalize_text(text: str) -> str:
    """Case-folded words without punctuation, LaTeX dressing or articles."""
    text = clean_latex(text).casefold()
    text = "".join(c if c.isalnum() else " " for c in text)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _last_statement(text: str) -> str:
    stated = list(re.finditer(r"(?i)answer\s*(?:is|:)\s*(.+)", text))
    if stated:
        return stated[-1].group(1).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --- the whole step ----------------------------------------------------------------------------------------------


def infer_kind(expected: str) -> Kind:
    """A number when the expected answer reads as one, a choice when it is one letter, else text."""
    if parse_number(expected) is not None:
        return "number"
    if re.fullmatch(rf"\s*\(?[{_LETTER}]\)?\s*", expected):
        return "choice"
    return "text"


@dataclass(frozen=True)
class Extracted:
    """The final answer found in a reply, and whether it came from a `\\boxed{}`."""

    text: str
    boxed: bool


def extract(answer: str, kind: Kind) -> Extracted | None:
    """The final answer in a reply's answer part (anything before a `</think>` is ignored); None when absent."""
    answer = answer_part(answer)
    boxed = last_boxed(answer)
    if boxed is not None:
        return Extracted(boxed, True)
    if kind == "number":
        found = last_number(answer)
        return Extracted(found[0], False) if found else None
    if kind == "choice":
        letter = last_choice(answer)
        return Extracted(letter, False) if letter else None
    statement = _last_statement(answer).strip()
    return Extracted(statement, False) if statement else None


def _number_of(found: Extracted) -> Number | None:
    if found.boxed:
        whole = parse_number(found.text)
        if whole is not None:
            return whole
    last = last_number(found.text)
    return last[1] if last else None


def is_correct(found: Extracted | None, expected: str, kind: Kind) -> bool:
    """Whether an extracted answer equals the expected one for this kind."""
    if found is None:
        return False
    if kind == "number":
        want, got = parse_number(expected), _number_of(found)
        return want is not None and got is not None and numbers_match(got, want)
    if kind == "choice":
        return parse_choice(found.text) == parse_choice(expected) is not None
    got_text, want_text = normalize_text(found.text), normalize_text(expected)
    return bool(want_text) and (got_text == want_text or (not found.boxed and got_text.endswith(" " + want_text)))


def vote_key(found: Extracted | None, kind: Kind) -> str | None:
    """What samples agree on in a majority vote: the value, the letter or the normalised text."""
    if found is None:
        return None
    if kind == "number":
        number = _number_of(found)
        return str(number.value) if number else None
    if kind == "choice":
        return parse_choice(found.text)
    return normalize_text(found.text) or None


def grade(answer: str, expected: str, kind: Kind) -> tuple[Extracted | None, bool]:
    """Extract from a reply's answer part and compare: (what was found, whether it is right)."""
    found = extract(answer, kind)
    return found, is_correct(found, expected, kind)
