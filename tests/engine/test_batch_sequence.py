"""One batch sequence fed scripted tokens (real vocabulary, no decoding): the single engine's loop guard and budget."""

from __future__ import annotations

import time

from localr1.engine.batch.sequence import Sequence, SequenceRequest
from localr1.engine.engine import PreparedPrompt
from localr1.engine.events import LoopDetected, ThinkingClosed
from localr1.engine.template import RenderedPrompt
from localr1.engine.thinking import CLOSED_THINKING, FORCED_CLOSE, TRANSITION, ThinkingControl, ends_sentence
from tests.conftest import GREEDY
from tests.fixtures.vocab_file import VocabFile

LOOP = "and the fire was a city of fire, "


def forced(vocab: VocabFile) -> dict[str, list[int]]:
    return {text: vocab.vocab.tokenize(text, add_bos=False, special=True) for text in (CLOSED_THINKING, FORCED_CLOSE)}


def sequence(vocab: VocabFile, controls: ThinkingControl, thinking: bool) -> Sequence:
    prompt = PreparedPrompt([1, 2, 3], RenderedPrompt("<think>\n" if thinking else "", False, thinking), 0)
    return Sequence(SequenceRequest("s", prompt, GREEDY.__class__(max_tokens=10_000), controls), 0, vocab.vocab,
                    forced(vocab))


def feed(seq: Sequence, text: str, vocab: VocabFile, until_closed: bool = False,
         events: list[object] | None = None) -> tuple[str | None, int]:
    """Feed text's tokens until the sequence stops (or its thinking is closed); (stop reason, tokens fed)."""
    tokens = vocab.vocab.tokenize(text, add_bos=False, special=False)
    for i, token in enumerate(tokens, start=1):
        got, stop, _ = seq.accept(token, time.perf_counter(), False, 100_000)
        if events is not None:
            events.extend(got)
        seq.pos += len(seq.pending)
        if stop is not None or (until_closed and seq.forced_close):
            return stop, i
    return None, len(tokens)


def test_a_loop_in_the_answer_stops_the_sequence(demo_vocab: VocabFile) -> None:
    seq = sequence(demo_vocab, ThinkingControl(loop_guard="act"), thinking=False)
    events: list[object] = []
    stop, fed = feed(seq, "Rome was founded long ago. " + LOOP * 10, demo_vocab, events=events)
    tokens = demo_vocab.vocab.tokenize(LOOP, add_bos=False, special=False)
    assert stop == "repetition" and seq.steer.loop_after == seq.generated == fed
    assert fed <= 7 + 4 * len(tokens)  # found within the third copy (plus the span's own first occurrence)
    keys = sum(1 for t in tokens if demo_vocab.vocab.piece(t).strip())  # the guard skips whitespace-only tokens
    assert events[-1] == LoopDetected(fed, keys, False, True)


def test_a_loop_while_thinking_ends_the_thinking_then_the_answer_is_watched(demo_vocab: VocabFile) -> None:
    seq = sequence(demo_vocab, ThinkingControl(loop_guard="act"), thinking=True)
    events: list[object] = []
    stop, _ = feed(seq, "Let me think. " + LOOP * 6, demo_vocab, until_closed=True, events=events)
    assert stop is None and seq.forced_close and not seq.reply.in_thinking
    assert seq.steer.ended_by == "loop" and isinstance(events[-1], ThinkingClosed) and events[-1].reason == "loop"
    # The transition and the closing tag go to the model, after the last kept token, and to neither text.
    assert seq.pending[1:] == forced(demo_vocab)[FORCED_CLOSE]
    assert "</think>" not in seq.reply.thinking + seq.reply.answer and TRANSITION.strip() not in seq.reply.thinking
    stop, _ = feed(seq, "The answer: " + LOOP * 6, demo_vocab)
    assert stop == "repetition"


def test_warn_notes_the_loop_and_goes_on(demo_vocab: VocabFile) -> None:
    seq = sequence(demo_vocab, ThinkingControl(loop_guard="warn"), thinking=False)
    stop, _ = feed(seq, LOOP * 10, demo_vocab)
    assert stop is None and seq.steer.loop_after is not None


def test_off_never_looks(demo_vocab: VocabFile) -> None:
    seq = sequence(demo_vocab, ThinkingControl(loop_guard="off"), thinking=False)
    assert feed(seq, LOOP * 10, demo_vocab)[0] is None and seq.steer.loop_after is None


def test_the_budget_ends_the_thinking_at_the_next_sentence_end_not_mid_word(demo_vocab: VocabFile) -> None:
    seq = sequence(demo_vocab, ThinkingControl(budget_tokens=1, loop_guard="off"), thinking=True)
    text = "Photosynthesis transforms sunlight into chemical energy. Chlorophyll absorbs it."
    assert len(demo_vocab.vocab.tokenize("Photosynthesis", add_bos=False, special=False)) > 1  # a cut could split it
    feed(seq, text, demo_vocab)
    assert seq.forced_close and seq.steer.ended_by == "budget" and not seq.reply.in_thinking
    assert seq.reply.thinking == "Photosynthesis transforms sunlight into chemical energy."
    assert ends_sentence(seq.reply.thinking)
    assert seq.reply.answer == "Chlorophyll absorbs it."


def test_budget_zero_closes_the_thinking_in_the_prompt(demo_vocab: VocabFile) -> None:
    seq = sequence(demo_vocab, ThinkingControl(budget_tokens=0), thinking=True)
    assert seq.pending == [1, 2, 3, *forced(demo_vocab)[CLOSED_THINKING]]
    assert not seq.reply.in_thinking and seq.steer.ended_by == "budget"
    feed(seq, "Hello there.", demo_vocab)
    assert seq.reply.thinking == "" and seq.reply.answer == "Hello there."


def test_answer_now_ends_the_thinking_before_the_next_token(demo_vocab: VocabFile) -> None:
    seq = sequence(demo_vocab, ThinkingControl(loop_guard="off"), thinking=True)
    feed(seq, "Let me see", demo_vocab)
    seq.answer_now = True
    feed(seq, " more", demo_vocab)
    assert seq.steer.ended_by == "answer_now" and seq.reply.thinking == "Let me see"
    assert seq.pending == forced(demo_vocab)[FORCED_CLOSE]  # " more" was not kept: the close comes first
