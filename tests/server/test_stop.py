"""Stop strings cut a streamed answer exactly where a cut of the whole answer would, however it is split."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from localr1.server.stop import StopMatcher, cut_answer, parse_stop

TEXT = st.text(alphabet="ab c\n🙂", max_size=40)


@given(TEXT, st.lists(st.text(alphabet="ab c\n🙂", min_size=1, max_size=5), min_size=1, max_size=4),
       st.lists(st.integers(0, 40), max_size=8))
def test_streamed_pieces_give_the_whole_answer_cut_at_the_first_stop(text: str, stops: list[str],
                                                                     cuts: list[int]) -> None:
    stops_t = tuple(stops)
    ends = [0, *sorted(c for c in cuts if c <= len(text)), len(text)]
    matcher = StopMatcher(stops_t)
    streamed = "".join(matcher.feed(text[a:b]) for a, b in pairwise(ends)) + matcher.flush()
    firsts = [i for i in (text.find(s) for s in stops_t) if i >= 0]
    expected = text[:min(firsts)] if firsts else text
    assert streamed == expected and matcher.stopped == bool(firsts)
    assert cut_answer(text, stops_t) == (expected, bool(firsts))


def test_a_partial_match_is_held_back_until_it_is_decided() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.feed("the E") == "the "
    assert matcher.feed("N") == ""
    assert matcher.feed("O of it") == "ENO of it"
    assert matcher.feed(" E") == " "
    assert matcher.feed("ND and more") == "" and matcher.stopped
    assert matcher.flush() == ""


def test_stop_values() -> None:
    assert parse_stop(None) == () and parse_stop("") == () and parse_stop([]) == ()
    assert parse_stop("x") == ("x",) and parse_stop(["a", "b", "a"]) == ("a", "b")
    assert isinstance(parse_stop(["1", "2", "3", "4", "5"]), str)
    assert parse_stop([""]) == parse_stop("") == () and parse_stop(["", "x"]) == ("x",)  # the same, alone or listed
    assert isinstance(parse_stop(3), str) and isinstance(parse_stop(["a", None]), str)
