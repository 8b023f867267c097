"""The engine's loop guard (localr1.engine.loop_guard): near-loops and data loops within a few periods, the
near-repeats of legitimate text (records, tests, SQL, zero grids) left alone, in both channels."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from localr1.engine.loop_guard import LoopGuard, LoopGuardConfig, scan, token_key
from tests.fixtures.vocab_file import VocabFile

CORPUS = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "loop_guard"


def words(rng: random.Random, n: int) -> list[int]:
    """n keys of distinct random words (the low bit marks a word)."""
    return [rng.randrange(1 << 40) << 1 | 1 for _ in range(n)]


def keys(vocab: VocabFile, text: str) -> list[int]:
    """The guard's keys for a text, whitespace-only tokens left out as the engine does."""
    pieces = (vocab.vocab.piece(t) for t in vocab.vocab.tokenize(text, add_bos=False, special=False))
    return [k for p in pieces if (k := token_key(p)) is not None]


def near_loop(period: int, copies: int = 24) -> tuple[list[int], list[int]]:
    """A prefix of varied words, then copies of one unit with one token (always at the same place) changed."""
    rng = random.Random(period)
    prefix, unit = words(rng, 300), words(rng, period)
    changed_at = rng.randrange(period)
    return prefix, [k for _ in range(copies) for k in [*unit[:changed_at], *words(rng, 1), *unit[changed_at + 1:]]]


def near_latency(period: int) -> int:
    """Tokens from a near-loop's start to its hit (copies of `period` with a token changed each time)."""
    prefix, loop = near_loop(period)
    hit = scan(prefix + loop)
    assert hit is not None and hit.rule == "near" and hit.period == period
    return hit.seen_at - len(prefix)


@pytest.mark.parametrize("period", [32, 64, 128, 256])
def test_a_near_loop_of_a_long_period_is_caught_within_three_periods(period: int) -> None:
    assert near_latency(period) <= 3 * period


@pytest.mark.parametrize("period", [8, 12, 20])
def test_a_short_near_loop_is_caught_once_it_spans_near_span_tokens(period: int) -> None:
    assert near_latency(period) <= LoopGuardConfig().near_span + period


def test_copies_that_differ_in_two_tokens_each_are_left_alone() -> None:
    rng = random.Random(2)
    prefix, unit = words(rng, 300), words(rng, 37)
    records = [k for _ in range(6) for k in [*words(rng, 1), *unit[1:20], *words(rng, 1), *unit[21:]]]
    assert scan(prefix + records) is None
    assert scan(prefix + records, LoopGuardConfig(near_mismatches=2)) is not None  # the threshold is what holds


def test_a_counting_loop_in_real_tokens_is_caught(demo_vocab: VocabFile) -> None:
    copy = "Let me check the case n = {} again: the sum of the first terms is still the same, so nothing changes.\n"
    period = len(keys(demo_vocab, copy.format(1)))
    stream = keys(demo_vocab, "So the total is 45.\n" + "".join(copy.format(i) for i in range(1, 9)))
    prefix = len(keys(demo_vocab, "So the total is 45.\n"))
    hit = scan(stream)
    assert hit is not None and hit.seen_at - prefix <= max(3 * period, LoopGuardConfig().near_span + period)


def representative_texts() -> dict[str, str]:
    """Legitimate repetition from the benchmark corpus: records, SQL inserts, tests, fields, zero grids, checklists."""
    texts = {name: (CORPUS / name).read_text(encoding="utf-8")
             for name in ("config.json", "queries.sql", "structured_code.py", "tables.md", "lists.md")}
    spec = importlib.util.find_spec("pprint")
    assert spec is not None and spec.origin is not None
    texts["pprint"] = Path(spec.origin).read_text(encoding="utf-8")  # near-identical dispatch blocks
    return texts


@pytest.mark.parametrize("thinking", [False, True], ids=["answer", "thinking"])
def test_representative_repetition_from_the_corpus_does_not_fire(
    demo_vocab: VocabFile, r1_vocab: VocabFile, thinking: bool,
) -> None:
    for vocab in (demo_vocab, r1_vocab):
        for name, text in representative_texts().items():
            guard = LoopGuard()
            hits = [hit for key in keys(vocab, text) if (hit := guard.feed(key, thinking=thinking)) is not None]
            assert hits == [], name


def test_the_channel_keyword_defaults_to_the_answer() -> None:
    rng = random.Random(9)
    guard = LoopGuard()
    assert all(guard.feed(k) is None for k in words(rng, 100))
    assert guard.tokens_seen == 100
    guard.reset()
    assert guard.tokens_seen == 0


def test_in_thinking_a_data_loop_follows_thinking_data_span() -> None:
    config = LoopGuardConfig(thinking_data_span=0)  # the prose rule for every unit in thinking
    rng = random.Random(4)
    prefix, unit = words(rng, 300), [rng.randrange(1 << 40) << 1 for _ in range(8)]  # no word in the unit
    thought, answer = scan(prefix + unit * 20, config, thinking=True), scan(prefix + unit * 20, config)
    assert thought is not None and thought.seen_at - len(prefix) == 3 * len(unit)
    assert answer is not None and answer.seen_at - len(prefix) >= config.data_span
