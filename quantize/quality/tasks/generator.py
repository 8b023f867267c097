"""The problem set shipped with localr1: arithmetic and word problems from a seeded generator, exact answers.

Written for localr1 and dedicated to the public domain (CC0 1.0). The templates take turns, so the first N
problems of the file (`--limit N`) cover every kind. Regenerate the shipped file with
`python -m quantize.quality.tasks.generator -o quantize/data/problems.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

SEED = 16
COUNT = 60
NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kofi", "Lena", "Mei", "Nico",
         "Omar", "Priya")
ITEMS = ("pencils", "apples", "stickers", "marbles", "cards", "stamps", "shells", "buttons")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LETTERS = "ABCD"

Generated = tuple[str, str, str]  # question, answer, kind
Template = Callable[[random.Random], Generated]


def exact(value: Fraction) -> str:
    """A value as an integer, a terminating decimal, or a fraction in lowest terms."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:
        places = 0
        scaled = value
        while scaled.denominator != 1:
            scaled *= 10
            places += 1
        sign = "-" if scaled < 0 else ""
        digits = str(abs(scaled.numerator)).rjust(places + 1, "0")
        return f"{sign}{digits[:-places]}.{digits[-places:]}"
    return f"{value.numerator}/{value.denominator}"


def _number(question: str, value: Fraction | int, *, as_fraction: bool = False) -> Generated:
    value = Fraction(value)
    written = f"{value.numerator}/{value.denominator}" if as_fraction and value.denominator > 1 else exact(value)
    return question, written, "number"


def add(r: random.Random) -> Generated:
    a, b = r.randint(100, 9999), r.randint(100, 9999)
    return _number(f"What is {a} + {b}?", a + b)


def subtract(r: random.Random) -> Generated:
    a, b = r.randint(10, 999), r.randint(10, 999)
    return _number(f"What is {a} - {b}?", a - b)


def multiply(r: random.Random) -> Generated:
    a, b = r.randint(12, 99), r.randint(12, 99)
    return _number(f"What is {a} × {b}?", a * b)


def divide(r: random.Random) -> Generated:
    b, q = r.randint(3, 25), r.randint(6, 60)
    return _number(f"What is {b * q} ÷ {b}?", q)


def precedence(r: random.Random) -> Generated:
    a, b, c, d = (r.randint(2, 20) for _ in range(4))
    return _number(f"What is {a} + {b} × {c} - {d}?", a + b * c - d)


def parentheses(r: random.Random) -> Generated:
    a, b, c = r.randint(2, 30), r.randint(2, 30), r.randint(2, 12)
    return _number(f"What is ({a} + {b}) × {c}?", (a + b) * c)


def fractions(r: random.Random) -> Generated:
    a, b = r.sample(range(2, 10), 2)
    return _number(f"What is 1/{a} + 1/{b}? Give the answer as a fraction in lowest terms.",
                   Fraction(1, a) + Fraction(1, b), as_fraction=True)


def percent(r: random.Random) -> Generated:
    p, n = r.choice((5, 10, 15, 20, 25, 30, 40, 60, 75)), r.randint(2, 40) * 20
    return _number(f"What is {p}% of {n}?", Fraction(p * n, 100))


def decimals(r: random.Random) -> Generated:
    x, y = Fraction(r.randint(101, 999), 100), Fraction(r.randint(11, 99), 10)
    return _number(f"What is {exact(x)} + {exact(y)}?", x + y)


def squares(r: random.Random) -> Generated:
    a, b = r.randint(11, 40), r.randint(2, 10)
    return _number(f"What is {a}^2 - {b}^2?", a * a - b * b)


def change(r: random.Random) -> Generated:
    name, n, price = r.choice(NAMES), r.randint(2, 6), r.randint(3, 15)
    bill = next(b for b in (20, 50, 100) if b > n * price)
    return _number(f"{name} buys {n} notebooks at ${price} each and pays with a ${bill} bill. "
                   "How much change, in dollars, does " + name + " get?", bill - n * price)


def sharing(r: random.Random) -> Generated:
    name, item, k, each = r.choice(NAMES), r.choice(ITEMS), r.randint(3, 9), r.randint(4, 15)
    return _number(f"{name} has {k * each} {item} and shares them equally among {k} friends. "
                   f"How many {item} does each friend get?", each)


def distance(r: random.Random) -> Generated:
    v, t = r.randint(4, 12) * 10, r.choice((Fraction(3, 2), Fraction(5, 2), 2, 3, 4))
    hours = "one and a half" if t == Fraction(3, 2) else "two and a half" if t == Fraction(5, 2) else str(t)
    return _number(f"A train travels at {v} km/h for {hours} hours. How many kilometres does it travel?", v * t)


def minutes(r: random.Random) -> Generated:
    h, m = r.randint(2, 9), r.randint(5, 55)
    return _number(f"How many minutes are there in {h} hours and {m} minutes?", 60 * h + m)


def ages(r: random.Random) -> Generated:
    name, a, d, k = r.choice(NAMES), r.randint(6, 15), r.randint(2, 9), r.randint(3, 12)
    return _number(f"{name} is {a} years old. {name}'s sister is {d} years older. "
                   f"How old will the sister be in {k} years?", a + d + k)


def average(r: random.Random) -> Generated:
    scores = [r.randint(60, 100) for _ in range(4)]
    return _number(f"The test scores were {', '.join(map(str, scores[:3]))} and {scores[3]}. "
                   "What is their average?", Fraction(sum(scores), 4))


def discount(r: random.Random) -> Generated:
    price, off = r.randint(4, 40) * 5, r.choice((10, 20, 25, 30, 40, 50))
    return _number(f"A jacket costs ${price}. It is on sale for {off}% off. What is the sale price in dollars?",
                   Fraction(price * (100 - off), 100))


def stock(r: random.Random) -> Generated:
    boxes, per = r.randint(4, 15), r.randint(6, 24)
    sold = r.randint(5, boxes * per - 1)
    return _number(f"A shop has {boxes} boxes with {per} pens in each box. It sells {sold} pens. "
                   "How many pens are left?", boxes * per - sold)


def perimeter(r: random.Random) -> Generated:
    w, h = r.randint(3, 40), r.randint(3, 40)
    return _number(f"A rectangle is {w} cm wide and {h} cm long. What is its perimeter in cm?", 2 * (w + h))


def linear(r: random.Random) -> Generated:
    a, x, b = r.randint(2, 9), Fraction(r.randint(-12, 12), r.choice((1, 1, 2, 3))), r.randint(-20, 20)
    c = a * x + b
    sign = "+" if b >= 0 else "-"
    return _number(f"Solve for x: {a}x {sign} {abs(b)} = {exact(c)}. Give x as a fraction in lowest terms "
                   "if it is not a whole number.", x, as_fraction=True)


def remainder(r: random.Random) -> Generated:
    a, n, m = r.randint(2, 9), r.randint(10, 40), r.randint(5, 13)
    return _number(f"What is the remainder when {a}^{n} is divided by {m}?", pow(a, n, m))


def lcm(r: random.Random) -> Generated:
    a, b = r.randint(4, 30), r.randint(4, 30)
    return _number(f"What is the least common multiple of {a} and {b}?", a * b // math.gcd(a, b))


def choose(r: random.Random) -> Generated:
    n, k = r.randint(5, 12), r.randint(2, 4)
    return _number(f"In how many ways can a team of {k} be chosen from {n} people?", math.comb(n, k))


def odd_sum(r: random.Random) -> Generated:
    n = r.randint(10, 60)
    return _number(f"What is the sum of the first {n} odd numbers?", n * n)


def _options(r: random.Random, right: str, wrong: list[str], question: str) -> Generated:
    options = [right, *wrong]
    r.shuffle(options)
    listed = " ".join(f"({letter}) {option}" for letter, option in zip(LETTERS, options, strict=True))
    return f"{question} {listed}", LETTERS[options.index(right)], "choice"


def largest(r: random.Random) -> Generated:
    values: set[Fraction] = set()
    while len(values) < 4:
        values.add(Fraction(r.randint(1, 9), r.choice((2, 4, 5, 8, 10))))
    ordered = sorted(values)
    shown = [exact(v) if i % 2 else f"{v.numerator}/{v.denominator}" for i, v in enumerate(ordered)]
    return _options(r, shown[-1], shown[:-1], "Which number is the largest?")


def prime(r: random.Random) -> Generated:
    primes = [p for p in range(20, 100) if all(p % d for d in range(2, 10))]
    composites = [n for n in range(21, 100, 2) if n not in primes]
    return _options(r, str(r.choice(primes)), [str(n) for n in r.sample(composites, 3)],
                    "Which of these numbers is prime?")


def weekday(r: random.Random) -> Generated:
    start, k = r.randrange(7), r.randint(3, 40)
    return (f"Today is {DAYS[start]}. What day of the week will it be in {k} days? Answer with the day's name.",
            DAYS[(start + k) % 7], "text")


def parity(r: random.Random) -> Generated:
    a, b = r.randint(10, 99), r.randint(10, 99)
    return (f"Is {a} × {b} + {a} even or odd? Answer with one word.",
            "even" if (a * b + a) % 2 == 0 else "odd", "text")


TEMPLATES: tuple[Template, ...] = (
    add, change, largest, multiply, sharing, linear, fractions, distance, weekday, percent, remainder, subtract,
    ages, prime, decimals, average, lcm, divide, discount, parity, precedence, stock, choose, squares, minutes,
    parentheses, perimeter, odd_sum,
)


def generate(seed: int = SEED, count: int = COUNT) -> list[dict[str, str]]:
    """`count` problems from `seed`; the templates take turns."""
    r = random.Random(seed)
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    i = 0
    while len(problems) < count:
        question, answer, kind = TEMPLATES[i % len(TEMPLATES)](r)
        i += 1
        if question in seen:
            continue
        seen.add(question)
        problems.append({"question": question, "answer": answer, "kind": kind})
    return problems


def to_jsonl(problems: list[dict[str, str]]) -> str:
    """One JSON object per line."""
    return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in problems)


def main(argv: list[str] | None = None) -> int:
    """Write the generated set to a file (or stdout)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--out", type=Path, help="output file (default: stdout)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--count", type=int, default=COUNT)
    args = parser.parse_args(argv)
    text = to_jsonl(generate(args.seed, args.count))
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
