"""Chat formatting: the model's own template in a sandbox, R1 rules, no doubled BOS."""

from __future__ import annotations

from pathlib import Path

import pytest

from localr1.engine.engine import Engine
from localr1.engine.params import LoadParams
from localr1.engine.template import ChatMessage, apply_r1_rules, render, strip_thinking
from localr1.errors import TemplateError
from tests.conftest import GREEDY
from tests.gguf_edit import R1_TEMPLATE

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"


def r1(messages: list[ChatMessage]) -> str:
    return render(R1_TEMPLATE, messages, bos_token=BOS, eos_token=EOS, r1_rules=True).text


def test_r1_prompt_matches_deepseek_format() -> None:
    text = r1([ChatMessage("user", "What is 2+2?")])
    assert text == f"{BOS}<｜User｜>What is 2+2?<｜Assistant｜><think>\n"


def test_r1_system_prompt_is_folded_into_first_user_turn() -> None:
    text = r1([
        ChatMessage("system", "Answer in French."),
        ChatMessage("user", "Hello"),
        ChatMessage("assistant", "Bonjour"),
        ChatMessage("user", "Thanks"),
    ])
    assert text == (
        f"{BOS}<｜User｜>Answer in French.\n\nHello<｜Assistant｜>Bonjour{EOS}"
        "<｜User｜>Thanks<｜Assistant｜><think>\n"
    )


def test_earlier_thinking_is_never_sent_back() -> None:
    history = [
        ChatMessage("user", "Q1"),
        ChatMessage("assistant", "A1", thinking="secret reasoning"),
        ChatMessage("assistant", "<think>old</think>\n\nA2"),
        ChatMessage("user", "Q2"),
    ]
    text = r1(history)
    assert "secret reasoning" not in text and "old" not in text
    assert "<｜Assistant｜>A1" in text and "<｜Assistant｜>A2" in text
    # The same for a non-R1 template: thinking is a display-only field everywhere.
    chatml = render(None, history, bos_token=None, eos_token=None, r1_rules=False).text
    assert "secret reasoning" not in chatml and "old" not in chatml


def test_strip_thinking_forms() -> None:
    assert strip_thinking("<think>a</think>b</think>\n c") == "c"
    assert strip_thinking("<think>never closed") == ""
    assert strip_thinking("plain") == "plain"


def test_system_only_conversation_becomes_a_user_turn() -> None:
    assert apply_r1_rules([ChatMessage("system", "S")]) == [ChatMessage("user", "S")]


def test_sandbox_blocks_attribute_escape() -> None:
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(TemplateError):
        render(evil, [ChatMessage("user", "x")], bos_token="", eos_token="", r1_rules=False)


def test_template_raise_exception_is_a_clear_error() -> None:
    template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(TemplateError, match="roles must alternate"):
        render(template, [ChatMessage("user", "x")], bos_token="", eos_token="", r1_rules=False)


@pytest.mark.model
def test_no_double_bos_when_template_writes_it(r1_demo_path: Path) -> None:
    eng = Engine(r1_demo_path, LoadParams(context_size=256), GREEDY)
    try:
        assert eng.info.is_r1 and eng.info.add_bos_token
        rendered = eng.render([ChatMessage("user", "hi")])
        assert rendered.starts_with_bos and rendered.opens_thinking
        tokens = eng.tokenize_prompt(rendered)
        bos_id = eng._llm.token_bos()
        assert tokens[0] == bos_id and tokens[1] != bos_id
        assert tokens.count(bos_id) == 1
    finally:
        eng.close()


def test_demo_template_renders_chatml(engine: Engine) -> None:
    text = engine.render([ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")]).text
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
    assert text.endswith("<|im_start|>assistant\n")
