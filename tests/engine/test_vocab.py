"""Token pieces of any length: every token of two real vocabularies, and long runs streamed back whole."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import llama_cpp
import pytest

from localr1.engine import AnswerDelta, ChatMessage, Finished, ThinkingDelta
from localr1.engine.engine import Engine, PreparedPrompt
from localr1.engine.params import SamplingParams
from localr1.engine.reply import ReplyAssembler
from localr1.engine.vocab import TextDecoder
from tests.fixtures.vocab_file import VocabFile

pytestmark = pytest.mark.model

CODE = "def f():\n    if x:\n" + " " * 40 + "return 1\n" + "-" * 40

# llama.cpp's token attributes (llama.h)
UNKNOWN, CONTROL, NORMAL, USER_DEFINED = 1, 8, 4, 16


def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, inverted: the character a BPE vocabulary writes for each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def expected_piece(vocab: Any, token: int, decoder: dict[str, int]) -> bytes:
    """The piece by a second route: the token's stored text and type, decoded byte-level by hand."""
    text = bytes(llama_cpp.llama_vocab_get_text(vocab, token)).decode("utf-8")
    attr = llama_cpp.llama_vocab_get_attr(vocab, token)
    if attr & (UNKNOWN | CONTROL):
        return b""  # control tokens have no text when special=False
    if attr & USER_DEFINED:
        return text.encode("utf-8")
    if attr & NORMAL:
        return bytes(decoder[ch] for ch in text)
    return b""


def check_every_token(loaded: VocabFile) -> int:
    decoder = byte_decoder()
    vocab = loaded.vocab
    mismatches = []
    longest = 0
    for token in range(vocab.size):
        piece = vocab.piece(token)
        longest = max(longest, len(piece))
        if piece != expected_piece(loaded.pointer, token, decoder):
            mismatches.append(token)
    assert not mismatches, f"{len(mismatches)} tokens decode wrongly, e.g. {mismatches[:10]}"
    return longest


def test_every_demo_token_decodes_to_its_whole_piece(demo_vocab: VocabFile) -> None:
    assert demo_vocab.vocab.size == 49152
    assert check_every_token(demo_vocab) > 32  # the demo has pieces past the old 32-byte buffer


def test_every_r1_token_decodes_to_its_whole_piece(r1_vocab: VocabFile) -> None:
    vocab = r1_vocab.vocab
    assert vocab.size == 152064
    assert sum(len(vocab.piece(t)) > 32 for t in range(vocab.size)) == 240
    assert check_every_token(r1_vocab) == 128


def test_r1_think_tags_are_plain_text_pieces(r1_vocab: VocabFile) -> None:
    """The parser sees `<think>` and `</think>`: they are user-defined tokens, kept with special=False."""
    vocab = r1_vocab.vocab
    for tag in ("<think>", "</think>"):
        ids = vocab.tokenize(tag, add_bos=False, special=True)
        assert len(ids) == 1
        assert vocab.piece(ids[0], special=False) == tag.encode()


MIXED = "naïve 🙂 机器学习 𝔘𝔫𝔦 🧑\u200d🚀 𠀋"


def test_text_decoder_joins_characters_split_across_tokens(r1_vocab: VocabFile) -> None:
    vocab = r1_vocab.vocab
    ids = vocab.tokenize(MIXED, add_bos=False, special=False)
    assert any(not _is_utf8(vocab.piece(t)) for t in ids)  # some characters really are split
    decoder = TextDecoder(vocab)
    assert "".join(decoder.feed(t) for t in ids) + decoder.finish() == MIXED


def test_a_character_cut_by_the_end_is_dropped_not_replaced(r1_vocab: VocabFile) -> None:
    """Every cut of the stream, mid-character ones included, ends at the last whole character."""
    vocab = r1_vocab.vocab
    ids = vocab.tokenize(MIXED, add_bos=False, special=False)
    cuts_mid_character = 0
    for end in range(len(ids) + 1):
        decoder = TextDecoder(vocab)
        streamed = "".join(decoder.feed(t) for t in ids[:end])
        cuts_mid_character += decoder.mid_character
        text = streamed + decoder.finish()
        assert "\ufffd" not in text and MIXED.startswith(text)
        assert not decoder.mid_character  # finish leaves the decoder clean
    assert cuts_mid_character >= 3


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("fixture", ["demo_vocab", "r1_vocab"])
def test_reply_assembler_keeps_long_runs(fixture: str, request: pytest.FixtureRequest) -> None:
    vocab = request.getfixturevalue(fixture).vocab
    ids = vocab.tokenize(CODE, add_bos=False, special=False)
    assert max(len(vocab.piece(t)) for t in ids) > 32
    reply = ReplyAssembler(vocab, start_in_thinking=False)
    deltas = [d for t in ids for d in reply.feed(t)] + reply.finish()
    assert "".join(d.text for d in deltas if isinstance(d, AnswerDelta)) == CODE
    assert reply.answer == CODE


def test_r1_reply_with_long_runs_in_thinking_and_answer(r1_vocab: VocabFile) -> None:
    vocab = r1_vocab.vocab
    output = "Indent it:\n" + CODE + "\n</think>\n\n" + CODE
    ids = vocab.tokenize(output, add_bos=False, special=True)
    reply = ReplyAssembler(vocab, start_in_thinking=True)
    deltas = [d for t in ids for d in reply.feed(t)] + reply.finish()
    assert reply.thinking == "Indent it:\n" + CODE + "\n"
    assert reply.answer == CODE
    assert "".join(d.text for d in deltas if isinstance(d, ThinkingDelta)) == reply.thinking


class ForcedReplyEngine(Engine):
    """The real engine, except that the reply's tokens are chosen in advance instead of sampled."""

    forced: list[int] = []

    def _token_source(self, prepared: PreparedPrompt, sp: SamplingParams) -> Generator[int, Any, None]:
        self._llm.eval(prepared.tokens)  # the prompt is still read by llama.cpp
        yield from self.forced


def test_long_runs_stream_back_byte_for_byte(demo_path: Any) -> None:
    from localr1.engine import LoadParams
    from tests.conftest import GREEDY

    eng = ForcedReplyEngine(demo_path, LoadParams(context_size=512), GREEDY)
    try:
        eng.forced = eng.vocab.tokenize(CODE, add_bos=False, special=False)
        events = list(eng.chat([ChatMessage("user", "Show me some code.")]))
    finally:
        eng.close()
    final = events[-1]
    assert isinstance(final, Finished)
    streamed = "".join(e.text for e in events if isinstance(e, AnswerDelta))
    assert streamed.encode() == CODE.encode()
    assert final.answer == CODE
    assert final.stats.generated_tokens == len(eng.forced)
