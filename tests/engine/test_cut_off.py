"""A reply ended by a token limit says so, and says when R1's thinking used it all."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from localr1.commands.run import cut_off_notice
from localr1.engine import ChatMessage, Finished, GenerationStats, LoadParams
from localr1.engine.engine import Engine
from tests.cli_helpers import localr1
from tests.conftest import GREEDY

STORY = [ChatMessage("user", "Write a long story about a dragon.")]


def finish(engine: Engine, messages: list[ChatMessage], max_tokens: int) -> Finished:
    final = list(engine.chat(messages, replace(GREEDY, max_tokens=max_tokens)))[-1]
    assert isinstance(final, Finished)
    return final


@pytest.mark.model
def test_max_tokens_cut_is_reported_with_its_limit(engine: Engine) -> None:
    stats = finish(engine, STORY, 6).stats
    assert stats.stop_reason == "length" and stats.truncated
    assert stats.length_limit == "max_tokens" and not stats.thinking_cut_off


@pytest.mark.model
def test_a_full_context_is_reported_as_the_limit(demo_path: Path) -> None:
    eng = Engine(demo_path, LoadParams(context_size=256), GREEDY)
    try:
        long_question = [ChatMessage("user", "Continue this list for as long as you can: " + "apple, pear, " * 50)]
        final = finish(eng, long_question, 4096)
    finally:
        eng.close()
    assert final.stats.stop_reason == "length" and final.stats.length_limit == "context"
    assert final.stats.prompt_tokens + final.stats.generated_tokens >= 255


@pytest.mark.model
def test_r1_thinking_that_uses_the_whole_budget_has_no_answer(r1_demo_path: Path) -> None:
    eng = Engine(r1_demo_path, LoadParams(context_size=512), GREEDY)
    try:
        final = finish(eng, STORY, 6)
    finally:
        eng.close()
    assert final.stats.truncated and final.stats.thinking_cut_off
    assert final.thinking and final.answer == ""


@pytest.mark.model
def test_an_ended_reply_is_not_truncated(engine: Engine) -> None:
    stats = finish(engine, [ChatMessage("user", "Say hi.")], 200).stats
    assert stats.stop_reason == "eos" and not stats.truncated
    assert stats.length_limit is None and not stats.thinking_cut_off


def stats(**changes: object) -> GenerationStats:
    base = GenerationStats(10, 10, 0, 512, 0.1, 1.0, 511.0, "length", "max_tokens", False)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_notices_name_the_limit_and_what_to_raise() -> None:
    assert cut_off_notice(stats(), 512, 4096) == "answer cut off at the 512-token limit (--max-tokens)"
    assert cut_off_notice(stats(thinking_cut_off=True), 512, 4096) == (
        "the model was still thinking when it reached the 512-token limit, no answer: raise --max-tokens"
    )
    assert cut_off_notice(stats(length_limit="context"), 512, 4096) == (
        "answer cut off: the context (4096 tokens) is full (--ctx)"
    )
    assert cut_off_notice(stats(length_limit="context", thinking_cut_off=True), 512, 4096) == (
        "the model was still thinking when the context (4096 tokens) filled up, no answer: raise --ctx"
    )
    assert cut_off_notice(stats(stop_reason="eos", length_limit=None), 512, 4096) is None


@pytest.mark.model
def test_run_says_the_answer_was_cut_off() -> None:
    result = localr1("run", "-t", "0", "-n", "5", "Write a long story about a dragon.")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "localr1: answer cut off at the 5-token limit (--max-tokens)"
    assert result.stdout.strip()


@pytest.mark.model
def test_run_json_marks_truncation(r1_demo_path: Path) -> None:
    result = localr1("run", "--json", "-m", str(r1_demo_path), "-t", "0", "-n", "5", "Hi")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["truncated"] is True and data["stop_reason"] == "length"
    assert data["stats"]["thinking_cut_off"] is True and data["stats"]["length_limit"] == "max_tokens"
    assert data["answer"] == "" and data["thinking"]
    assert data["notice"] == (
        "the model was still thinking when it reached the 5-token limit, no answer: raise --max-tokens"
    )


@pytest.mark.model
def test_run_json_of_a_complete_answer_is_not_truncated() -> None:
    result = localr1("run", "--json", "-t", "0", "-n", "200", "Say hi.")
    data = json.loads(result.stdout)
    assert data["truncated"] is False and data["stop_reason"] == "eos" and data["notice"] is None
    assert "cut off" not in result.stderr
