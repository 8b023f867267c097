"""The collector policy: no automatic full collections while the app runs, full ones only when idle."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from localr1.tui import activity, gc_policy


@pytest.fixture
def policy() -> Iterator[None]:
    before = gc.get_threshold()
    gc_policy.start()
    yield
    gc_policy.stop()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def make_due() -> None:
    for _ in range(gc_policy.FULL_AFTER):
        gc.collect(1)  # each generation-1 collection counts towards a full one


def test_start_freezes_and_stops_automatic_full_collections(policy: None) -> None:
    assert gc.get_freeze_count() > 0 and gc.get_threshold()[2] == gc_policy.NO_AUTOMATIC_FULL


def test_a_due_full_collection_waits_for_the_stream_and_for_a_pause_in_typing(policy: None) -> None:
    make_due()
    assert not gc_policy.collect_if_due(streaming=True)
    activity.note_input()
    assert not gc_policy.collect_if_due(streaming=False)
    activity._last_input[0] -= gc_policy.IDLE_S
    assert gc_policy.collect_if_due(streaming=False)
    assert gc.get_count()[2] == 0  # it was a full collection
    assert not gc_policy.collect_if_due(streaming=False)  # and the next waits until one is due again


def test_nothing_is_collected_when_the_app_is_not_running() -> None:
    make_due()
    activity._last_input[0] -= 10 * gc_policy.IDLE_S
    assert not gc_policy.collect_if_due(streaming=False)
