"""The worker side of streaming: fitting a message into the context, the stream buffer."""

from __future__ import annotations

import os

from localr1.engine.params import LoadParams, default_threads
from localr1.tui.generation import (
    REFRESH_INTERVAL_S,
    SHARED_CPU_REFRESH_INTERVAL_S,
    StreamBuffer,
    fit_message,
    refresh_interval,
)


def count(text: str) -> int:
    return max(1, len(text) // 4)


def test_fit_message_keeps_the_start_within_budget() -> None:
    text = "word " * 10_000
    trim = fit_message(count, text, 1000)
    assert trim.total_tokens == count(text) and 0 < trim.kept_tokens <= 1000
    assert text.startswith(trim.text)


def test_fit_message_ends_even_with_an_impossible_budget() -> None:
    trim = fit_message(count, "x" * 50_000, -40)
    assert count(trim.text) == 1 and len(trim.text) < 50_000


def test_short_message_is_not_counted() -> None:
    assert fit_message(lambda _: 1 / 0, "short", 100).text == "short"  # type: ignore[arg-type,return-value]


def test_buffer_drains_in_bounded_slices_thinking_first() -> None:
    buffer = StreamBuffer()
    for _ in range(100):
        buffer.add(thinking="abcde")
    buffer.add(answer="answer")
    first = buffer.drain(50)
    assert first is not None and first.thinking == "abcde" * 10 and first.answer == ""
    rest = []
    while (batch := buffer.drain(50)) is not None:
        rest.append(batch)
    assert "".join(b.thinking for b in rest) == "abcde" * 90
    assert rest[-1].answer == "answer" and buffer.empty()


def test_the_screen_updates_less_often_when_llama_cpp_holds_every_cpu() -> None:
    """Each frame's CPU comes out of llama.cpp's threads when they use every CPU (issue 12: 0.93x at 5 Hz, 0.97x
    at 2 Hz on 2 cores), while a spare CPU draws at 5 Hz for nothing."""
    cpus = len(os.sched_getaffinity(0))
    assert refresh_interval(LoadParams(threads=cpus)) == SHARED_CPU_REFRESH_INTERVAL_S == 0.5
    assert refresh_interval(LoadParams(threads=cpus + 2)) == SHARED_CPU_REFRESH_INTERVAL_S
    if cpus > 1:
        assert refresh_interval(LoadParams(threads=cpus - 1)) == REFRESH_INTERVAL_S == 0.2
    assert refresh_interval(LoadParams(threads=0)) == refresh_interval(LoadParams(threads=default_threads()))
