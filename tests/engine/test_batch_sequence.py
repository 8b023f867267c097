"""One batch sequence fed scripted tokens (real vocabulary, no decoding): loop guard modes and the thinking budget."""

from __future__ import annotations

import time

from localr1.engine.batch.engine import CLOSE_THINKING
from localr1.engine.batch.sequence import ReasoningControls, Sequence, SequenceRequest
from localr1.engine.engine import PreparedPrompt
from localr1.engine.template import RenderedPrompt
from tests.conftest import GREEDY
from tests.fixtures.vocab_file import VocabFile

LOOP = "and the fire was a city of fire, "


def sequence(vocab: VocabFile, controls: ReasoningControls, thinking: bool) -> Sequence:
    prompt = PreparedPrompt([1, 2, 3], RenderedPrompt("<think>\n" if thinking else "", False, thinking), 0)
    close = vocab.vocab.tokenize(CLOSE_THINKING, add_bos=False, special=True)
    return Sequence(SequenceRequest("s", prompt, GREEDY.__class__(max_tokens=10_000), controls), 0, vocab.vocab, close)


def feed(seq: Sequence, text: str, vocab: VocabFile, until_closed: bool = False) -> tuple[str | None, int]:
    """Feed text's tokens until the sequence stops (or its thinking is closed); (stop reason, tokens fed)."""
    tokens = vocab.vocab.tokenize(text, add_bos=False, special=False)
    for i, token in enumerate(tokens, start=1):
        _, stop, _ = seq.accept(token, time.perf_counter(), False, 100_000)
        seq.pos += len(seq.pending)
        if stop is not None or (until_closed and seq.forced_close):
            return stop, i
    return None, len(tokens)


def test_a_loop_in_the_answer_stops_the_sequence(demo_vocab: VocabFile) -> None:
    seq = sequence(demo_vocab, ReasoningControls(loop_guard="act"), thinking=False)
    stop, fed = feed(seq, "Rome was founded long ago. " + LOOP * 10, demo_vocab)
    period = len(demo_vocab.vocab.tokenize(LOOP, add_bos=False, special=False))
    assert stop == "repetition" and seq.loop_detected_at is not None
    assert fed <= 7 + 4 * period  # found within the third copy (plus the span's own first occurrence)


def test_a_loop_while_thinking_ends_the_thinking_then_the_answer_is_watched(demo_vocab: VocabFile) -> None:
    seq = sequence(demo_vocab, ReasoningControls(loop_guard="act"), thinking=True)
    stop, _ = feed(seq, "Let me think. " + LOOP * 6, demo_vocab, until_closed=True)
    assert stop is None and seq.forced_close and not seq.reply.in_thinking
    assert seq.pending[1:] == demo_vocab.vocab.tokenize(CLOSE_THINKING, add_bos=False, special=True)
    assert "</think>" not in seq.reply.thinking and seq.reply.answer.strip() != "</think>"
    stop, _ = feed(seq, "The answer: " + LOOP * 6, demo_vocab)
    assert stop == "repetition"


def test_warn_notes_the_loop_and_goes_on(demo_vocab: VocabFile) -> None:
    seq = sequence(demo_vocab, ReasoningControls(loop_guard="warn"), thinking=False)
    stop, _ = feed(seq, LOOP * 10, demo_vocab)
    assert stop is None and seq.loop_detected_at is not None


def test_off_never_looks(demo_vocab: VocabFile) -> None:
    seq = sequence(demo_vocab, ReasoningControls(loop_guard="off"), thinking=False)
    assert feed(seq, LOOP * 10, demo_vocab)[0] is None and seq.loop_detected_at is None


def test_the_budget_closes_the_thinking_after_that_many_tokens(demo_vocab: VocabFile) -> None:
    seq = sequence(demo_vocab, ReasoningControls(thinking_budget=5, loop_guard="off"), thinking=True)
    feed(seq, "one two three four five six seven eight nine ten", demo_vocab)
    assert seq.forced_close and seq.thinking_tokens == 5 and not seq.reply.in_thinking
    assert seq.reply.thinking.split() == ["one", "two", "three", "four", "five"]
    assert seq.reply.answer.split() == ["six", "seven", "eight", "nine", "ten"]
