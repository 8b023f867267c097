"""Calibration data: shipped under a licence, chat-formatted with the model's own template, tokenized to fit."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from localr1.ggufinfo import GGUFInfo, read_info
from quantize.errors import CalibrationError
from quantize.ladder.calibration import (
    DATA_DIR,
    Turn,
    load_calibration,
    load_heldout,
    render_conversation,
)
from quantize.ladder.imatrix_source import token_sequences
from quantize.runner import Runner
from tests.gguf_edit import R1_TEMPLATE

BOS, EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
TWO_TURNS = [
    Turn("user", "What is 2 + 2?"),
    Turn("assistant", "4", thinking="Adding two and two gives four."),
    Turn("user", "And 3 + 3?"),
    Turn("assistant", "6", thinking="Three plus three is six."),
]


def _r1(info: GGUFInfo) -> GGUFInfo:
    return replace(info, chat_template=R1_TEMPLATE, bos_token=BOS, eos_token=EOS)


def test_shipped_data_is_licensed_and_well_formed() -> None:
    readme = (DATA_DIR / "README.md").read_text()
    assert "CC0 1.0" in readme
    calibration = load_calibration()
    assert len(calibration.conversations) >= 10
    for conversation in calibration.conversations:
        assert conversation[-1].role == "assistant" and conversation[-1].thinking
    text, sha = load_heldout()
    assert "def merge_intervals" in text and len(sha) == 64
    calibration_text = (DATA_DIR / "calibration.json").read_text()
    long_lines = [line for line in text.splitlines() if len(line) > 40]
    assert long_lines and not [line for line in long_lines if line.strip() in calibration_text]  # held out


def test_r1_conversation_carries_the_last_reasoning_but_not_earlier_thinking(demo_path: Path) -> None:
    info = _r1(read_info(demo_path))
    text = render_conversation(info, TWO_TURNS)
    assert text.startswith(BOS + "<｜User｜>What is 2 + 2?<｜Assistant｜>4" + EOS)
    assert "Adding two and two" not in text  # earlier turns' thinking is never sent back
    assert text.endswith("<｜User｜>And 3 + 3?<｜Assistant｜><think>\nThree plus three is six.\n</think>\n\n6" + EOS)


def test_chatml_model_gets_its_own_format_without_think_tags(demo_path: Path) -> None:
    info = read_info(demo_path)
    text = render_conversation(info, TWO_TURNS[:2])
    assert "<|im_start|>user\nWhat is 2 + 2?<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n4<|im_end|>\n")
    assert "<think>" not in text


def test_bad_calibration_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"conversations": [')
    with pytest.raises(CalibrationError, match="not valid JSON"):
        load_calibration(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"conversations": [{"messages": [{"role": "robot", "content": "hi"}]}]}))
    with pytest.raises(CalibrationError, match="each message needs a role"):
        load_calibration(wrong)
    with pytest.raises(CalibrationError, match="cannot read the calibration file"):
        load_calibration(tmp_path / "missing.json")
    plain = tmp_path / "prose.txt"
    plain.write_text("Some prose to calibrate on.")
    loaded = load_calibration(plain)
    assert loaded.text == "Some prose to calibrate on." and not loaded.conversations


@pytest.mark.model
def test_token_sequences_fit_the_context_and_the_budget(demo_path: Path) -> None:
    texts = ["word " * 300, "another text " * 50]
    with Runner(demo_path, n_ctx=128) as runner:
        sequences = token_sequences(runner, texts, None, n_ctx=128, max_tokens=10_000)
        assert all(1 < len(s) <= 128 for s in sequences)
        assert sum(len(s) for s in sequences) == sum(len(runner.tokenize(t, False)) for t in texts)
        capped = token_sequences(runner, texts, None, n_ctx=128, max_tokens=200)
        assert sum(len(s) for s in capped) == 200
