"""R1 with the template found in published GGUFs (real 7B header): the prompt opens thinking, one BOS."""

from __future__ import annotations

from pathlib import Path

import pytest

from localr1.engine import ChatMessage, Finished, LoadParams, ThinkingDelta
from localr1.engine.engine import Engine, tokenize_prompt
from localr1.engine.reply import ReplyAssembler
from localr1.engine.template import render
from localr1.ggufinfo import GGUFInfo, read_info
from tests.conftest import GREEDY
from tests.fixtures.vocab_file import VocabFile
from tests.gguf_edit import STRING, rewrite_gguf

pytestmark = pytest.mark.model

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"


@pytest.fixture(scope="module")
def r1_info(r1_vocab_path: Path) -> GGUFInfo:
    return read_info(r1_vocab_path)


def r1_render(info: GGUFInfo, messages: list[ChatMessage], r1_rules: bool = True) -> str:
    return render(info.chat_template, messages, bos_token=info.bos_token, eos_token=info.eos_token,
                  r1_rules=r1_rules).text


def test_the_real_template_is_the_older_one(r1_info: GGUFInfo) -> None:
    assert r1_info.is_r1 and r1_info.bos_token == BOS and r1_info.add_bos_token
    # The template's own generation prompt ends at <｜Assistant｜>, with no opener.
    raw = r1_render(r1_info, [ChatMessage("user", "hi")], r1_rules=False)
    assert raw == f"{BOS}<｜User｜>hi<｜Assistant｜>"


def test_rendered_prompt_ends_with_the_opener(r1_info: GGUFInfo) -> None:
    text = r1_render(r1_info, [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "What is 2+2?"),
        ChatMessage("assistant", "<think>\nadd\n</think>\n\n4"),
        ChatMessage("user", "And 3+3?"),
    ])
    assert text == (
        f"{BOS}<｜User｜>Be brief.\n\nWhat is 2+2?<｜Assistant｜>4{EOS}<｜User｜>And 3+3?<｜Assistant｜><think>\n"
    )


def test_prompt_tokenizes_with_one_bos_and_the_think_token(r1_info: GGUFInfo, r1_vocab: VocabFile) -> None:
    vocab = r1_vocab.vocab
    rendered = render(r1_info.chat_template, [ChatMessage("user", "What is 2+2?")], bos_token=r1_info.bos_token,
                      eos_token=r1_info.eos_token, r1_rules=True)
    assert rendered.starts_with_bos and rendered.opens_thinking
    assert vocab.adds_bos  # the tokenizer would add one more if asked
    tokens = tokenize_prompt(vocab, rendered)
    assert tokens[0] == vocab.bos and tokens.count(vocab.bos) == 1
    think = vocab.tokenize("<think>", add_bos=False, special=True)
    assert tokens[-2:] == [*think, *vocab.tokenize("\n", add_bos=False, special=False)]
    assert vocab.detokenize(tokens[1:], special=True).decode() == rendered.text[len(BOS):]


def test_the_reply_parser_starts_in_thinking(r1_info: GGUFInfo, r1_vocab: VocabFile) -> None:
    vocab = r1_vocab.vocab
    rendered = render(r1_info.chat_template, [ChatMessage("user", "What is 2+2?")], bos_token=r1_info.bos_token,
                      eos_token=r1_info.eos_token, r1_rules=True)
    reply = ReplyAssembler(vocab, start_in_thinking=rendered.opens_thinking)
    assert reply.in_thinking
    for token in vocab.tokenize("Two plus two is four.\n</think>\n\nThe answer is 4.", add_bos=False, special=True):
        reply.feed(token)
    reply.finish()
    assert reply.thinking == "Two plus two is four.\n" and reply.answer == "The answer is 4."


def test_engine_with_the_real_template_streams_thinking(demo_path: Path, r1_info: GGUFInfo, tmp_path: Path) -> None:
    assert r1_info.chat_template is not None
    path = rewrite_gguf(demo_path, tmp_path / "old-r1-template.gguf",
                        tokenizer__chat_template=(STRING, r1_info.chat_template))
    eng = Engine(path, LoadParams(context_size=256), GREEDY)
    try:
        assert eng.info.is_r1
        assert eng.render([ChatMessage("user", "hi")]).text.endswith("<｜Assistant｜><think>\n")
        events = list(eng.chat([ChatMessage("user", "Write a story.")]))
    finally:
        eng.close()
    final = events[-1]
    assert isinstance(final, Finished)
    # The demo never closes </think>: with the opener in the prompt, all it writes is reasoning.
    assert final.thinking and final.answer == ""
    assert any(isinstance(e, ThinkingDelta) for e in events)
