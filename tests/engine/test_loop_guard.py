"""The batch loop guard on scripted token streams: loops found within three periods, varied text left alone."""

from __future__ import annotations

import random

import pytest

from localr1.engine.batch import LoopGuard
from tests.fixtures.vocab_file import VocabFile

VARIED = """
The question asks how long a train takes to cover 120 km at 80 km/h. Distance over speed gives
1.5 hours, so ninety minutes. Let me check: 80 km in the first hour, 40 km in the next half hour.

```python
def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

def fact(n: int) -> int:
    out = 1
    for i in range(2, n + 1):
        out *= i
    return out
```

| planet | moons | day (h) |
|---|---|---|
| Earth | 1 | 24 |
| Mars | 2 | 24.6 |
| Jupiter | 95 | 9.9 |

1. Preheat the oven to 200 °C.
2. Mix the flour, the salt and the yeast.
3. Add the water slowly, then knead for ten minutes.
4. Let the dough rise for an hour, shape it, and bake it for thirty minutes.

Wait, maybe I should reconsider the units: km/h times hours is km, so the answer stays 1.5 hours.
Alternatively one could compute 120/80 directly; both give the same number, which is reassuring.
"""


def first_hit(tokens: list[int]) -> int | None:
    guard = LoopGuard()
    for i, token in enumerate(tokens):
        if guard.feed(token):
            return i
    return None


@pytest.mark.parametrize("period", [4, 7, 31, 256])
def test_a_repeated_span_is_found_within_three_periods(period: int) -> None:
    rng = random.Random(period)
    prefix = [rng.randrange(10_000) for _ in range(300)]
    span = [rng.randrange(10_000) for _ in range(period)]
    hit = first_hit(prefix + span * 5)
    assert hit == len(prefix) + 3 * period - 1  # the moment the third copy is complete


def test_a_multi_line_loop_in_real_tokens_is_found(demo_vocab: VocabFile) -> None:
    text = "Rome was founded.\n" + "It was a city of fire,\nand the fire was a city,\nand so the story goes.\n" * 4
    tokens = demo_vocab.vocab.tokenize(text, add_bos=False, special=False)
    hit = first_hit(tokens)
    assert hit is not None and hit < len(tokens) - 1


def test_varied_text_never_fires(demo_vocab: VocabFile) -> None:
    tokens = demo_vocab.vocab.tokenize(VARIED * 1, add_bos=False, special=False)
    assert first_hit(tokens) is None


def test_spans_shorter_than_four_tokens_are_caught_as_a_multiple_of_their_period() -> None:
    assert first_hit([1, 2, 3] * 50) == 17  # three copies of the 6-token span 1 2 3 1 2 3
    assert first_hit([5] * 50) == 11  # three copies of 5 5 5 5
    assert first_hit([1, 2, 1, 2, 1, 2, 9]) is None


def test_random_tokens_from_a_small_alphabet_do_not_fire() -> None:
    rng = random.Random(3)
    assert first_hit([rng.randrange(64) for _ in range(20_000)]) is None
