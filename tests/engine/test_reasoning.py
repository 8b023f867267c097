"""The thinking/answer parser: tags split anywhere, thinking-mode start, skipped thinking."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from localr1.engine.reasoning import ReasoningParser, Segment, prompt_opens_thinking, split_reasoning


def parse_chunks(chunks: list[str], start_in_thinking: bool) -> tuple[str, str]:
    parser = ReasoningParser(start_in_thinking)
    segments: list[Segment] = []
    for chunk in chunks:
        segments += parser.feed(chunk)
    segments += parser.finish()
    thinking = "".join(s.text for s in segments if s.channel == "thinking")
    answer = "".join(s.text for s in segments if s.channel == "answer")
    return thinking, answer


def test_r1_output_after_opener_in_prompt() -> None:
    assert split_reasoning("Let me think.\nOK.\n</think>\n\nThe answer is 4.", True) == (
        "Let me think.\nOK.\n",
        "The answer is 4.",
    )


def test_explicit_opener_in_output() -> None:
    assert split_reasoning("<think>\nhmm\n</think>\n\n42", False) == ("hmm\n", "42")


def test_empty_thinking_block_is_skipped() -> None:
    assert split_reasoning("<think>\n\n</think>\n\nDirect answer.", False) == ("", "Direct answer.")
    assert split_reasoning("\n\n</think>\n\nDirect answer.", True) == ("", "Direct answer.")


def test_repeated_opener_is_swallowed_when_prompt_opened_thinking() -> None:
    assert split_reasoning("<think>\nreasoning</think>answer", True) == ("reasoning", "answer")


def test_model_without_thinking_gives_only_answer() -> None:
    assert split_reasoning("Plain reply with <think> later in the text.", False) == (
        "",
        "Plain reply with <think> later in the text.",
    )


def test_unclosed_thinking_stays_thinking() -> None:
    assert split_reasoning("still reasoning when the budget ran out", True) == (
        "still reasoning when the budget ran out",
        "",
    )


def test_close_tag_split_across_chunks() -> None:
    chunks = ["reason", "ing</", "thi", "nk>", "\n\nans", "wer"]
    assert parse_chunks(chunks, True) == ("reasoning", "answer")


def test_lone_angle_brackets_are_not_held_forever() -> None:
    assert parse_chunks(["a <", "b", " </thin", "g"], True) == ("a <b </thing", "")


def test_prompt_opens_thinking() -> None:
    assert prompt_opens_thinking("<｜User｜>hi<｜Assistant｜><think>\n")
    assert not prompt_opens_thinking("<|im_start|>assistant\n")


outputs = st.lists(
    st.sampled_from(["<think>", "</think>", "\n", " ", "a", "b c", "<", "/", "think", ">", "é", "思考", "</"]),
    max_size=30,
).map("".join)


@st.composite
def text_and_cuts(draw: st.DrawFn) -> tuple[str, list[int]]:
    text = draw(outputs)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=12))))
    return text, cuts


@given(text_and_cuts(), st.booleans())
def test_any_chunking_gives_the_same_result(case: tuple[str, list[int]], start_in_thinking: bool) -> None:
    text, cuts = case
    bounds = [0, *cuts, len(text)]
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    assert parse_chunks(chunks, start_in_thinking) == parse_chunks([text], start_in_thinking)
    per_char = parse_chunks(list(text), start_in_thinking)
    assert per_char == parse_chunks([text], start_in_thinking)


tag_free = st.text(alphabet=st.sampled_from(list("ab <>/\n思é")), max_size=40).filter(
    lambda t: "<think>" not in t and "</think>" not in t
)


@given(tag_free, tag_free)
def test_well_formed_output_splits_exactly(thought: str, reply: str) -> None:
    text = f"<think>{thought}</think>{reply}"
    assert split_reasoning(text, False) == (thought.lstrip(), reply.lstrip())
    assert split_reasoning(f"{thought}</think>{reply}", True) == (thought.lstrip(), reply.lstrip())


@given(tag_free)
def test_tag_free_output_keeps_every_character(text: str) -> None:
    assert split_reasoning(text, False) == ("", text.lstrip())
    assert split_reasoning(text, True) == (text.lstrip(), "")


def test_a_forced_close_keeps_the_thinking_and_routes_the_rest_to_the_answer() -> None:
    parser = ReasoningParser(start_in_thinking=True)
    segments = parser.feed("The sky scatters blue light. </thi")  # a closing tag was on its way
    segments += parser.close_thinking()
    segments += parser.feed("\n\nBecause of Rayleigh scattering.") + parser.finish()
    thinking = "".join(s.text for s in segments if s.channel == "thinking")
    answer = "".join(s.text for s in segments if s.channel == "answer")
    assert thinking == "The sky scatters blue light. "
    assert answer == "Because of Rayleigh scattering."


def test_a_closing_tag_repeated_at_the_answer_start_never_reaches_the_answer() -> None:
    assert split_reasoning("hmm</think>\n\n</think>\n\nAnswer.", True) == ("hmm", "Answer.")
    parser = ReasoningParser(start_in_thinking=True)
    segments = parser.close_thinking()
    for piece in ["\n", "</", "think", ">", "\n\n", "Fine", " </think> here"]:
        segments += parser.feed(piece)
    segments += parser.finish()
    assert "".join(s.text for s in segments if s.channel == "answer") == "Fine </think> here"
