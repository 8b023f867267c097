"""Decoding far below the planner's prediction is said in one line, with what helps (mlock, or the limit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localr1.engine.events import SlowDecoding
from localr1.engine.params import SpeedPrediction
from localr1.engine.residency import DecodeWatch
from localr1.residency import LockStatus, lock_status_from, memlock_limit, slow_decoding_notice
from tests.cli_helpers import localr1

FAST = SpeedPrediction(100.0, 50.0)


def _feed(watch: DecodeWatch, rate: float, tokens: int) -> list[SlowDecoding]:
    """Tokens at `rate` per second after a first token at t=10 s; the events the watch answers."""
    return [e for i in range(1, tokens + 1) if (e := watch.token(10.0 + (i - 1) / rate, i)) is not None]


def test_slow_first_seconds_are_reported_once() -> None:
    events = _feed(DecodeWatch(FAST, depth=0, context=8192), rate=20.0, tokens=200)
    assert len(events) == 1
    assert events[0].measured_tps == pytest.approx(20.0) and events[0].predicted_tps == pytest.approx(100.0)


def test_speed_near_the_prediction_is_not_reported() -> None:
    assert _feed(DecodeWatch(FAST, depth=0, context=8192), rate=60.0, tokens=400) == []


def test_nothing_is_judged_before_the_window_or_without_a_prediction() -> None:
    assert _feed(DecodeWatch(FAST, depth=0, context=8192), rate=1.0, tokens=2) == []  # 1 s: too soon
    assert _feed(DecodeWatch(FAST, depth=0, context=8192), rate=40.0, tokens=60) == []  # 1.5 s, 59 tokens
    assert len(_feed(DecodeWatch(FAST, depth=0, context=8192), rate=40.0, tokens=66)) == 1  # 64 tokens: judged
    assert _feed(DecodeWatch(None, depth=0, context=8192), rate=1.0, tokens=50) == []


def test_the_prediction_allows_for_a_deep_cache() -> None:
    """With the context nearly full the expected speed is the full-context one: 40 tokens/s is fine then."""
    assert SpeedPrediction(100.0, 50.0).at_depth(8000, 8192) == pytest.approx(50.6, abs=0.1)
    assert _feed(DecodeWatch(FAST, depth=8000, context=8192), rate=40.0, tokens=200) == []
    assert len(_feed(DecodeWatch(FAST, depth=0, context=8192), rate=40.0, tokens=200)) == 1


@pytest.mark.parametrize("status, advice", [
    (LockStatus(needed=10**9, limit=None, room=True), "--mlock"),
    (LockStatus(needed=10**9, limit=8 * 2**20, room=True), "ulimit -l unlimited"),
    (LockStatus(needed=10**9, limit=None, room=False), "no room to lock"),
    (LockStatus(needed=10**9, limit=None, room=True, in_use=True), "another busy program"),
])
def test_the_notice_says_what_helps(status: LockStatus, advice: str) -> None:
    text = slow_decoding_notice(12.0, 40.0, status)
    assert "12.0 tokens/s, under half the 40.0 predicted" in text and advice in text and "\n" not in text
    assert lock_status_from({"mlock": status.as_dict()}) == status


def test_memlock_limit_reads_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import resource

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    assert memlock_limit() == (None if soft == resource.RLIM_INFINITY else soft)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert memlock_limit() is None  # root may lock whatever the limit


@pytest.mark.model
def test_the_engine_sends_one_slow_decoding_event(demo_path: Path) -> None:
    from localr1.engine import ChatMessage, Finished, LoadParams, SamplingParams
    from localr1.engine.engine import Engine

    eng = Engine(demo_path, LoadParams(context_size=512), SamplingParams(temperature=0, max_tokens=40),
                 prediction=SpeedPrediction(1e6, 1e6))
    eng.watch_window_s = 0.0
    try:
        events = list(eng.chat([ChatMessage("user", "Write a long story about a dragon.")]))
    finally:
        eng.close()
    slow = [e for e in events if isinstance(e, SlowDecoding)]
    assert isinstance(events[-1], Finished) and events[-1].stats.generated_tokens > 9
    assert len(slow) == 1 and 0 < slow[0].measured_tps < 1e5 and slow[0].predicted_tps == pytest.approx(1e6, rel=0.01)
    assert eng.describe()["predicted_tokens_per_s"] == 1e6


@pytest.mark.model
def test_run_says_so_on_stderr_and_in_json() -> None:
    """A cached CPU speed a thousand times too high: every real decode is 'far below' the prediction."""
    from localr1.engine.params import default_threads
    from localr1.hardware import CPUSpeed, probe, save_speed

    fast = CPUSpeed({"Q4_1": 5e13, "F16": 5e13}, {"Q4_1": 5e15}, 1e-9, 1e-10, 1e14, default_threads(), "absurd")
    save_speed(probe(check_offload=False), fast)
    args = ["run", "-t", "0", "-n", "72", "Write a very long story about a dragon."]  # judged after 64 tokens
    shown = localr1(*args, timeout=300)
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stderr.splitlines() if "under half the" in line]
    assert len(lines) == 1 and lines[0].startswith("localr1: decoding at ")
    data = json.loads(localr1(*args, "--json", timeout=300).stdout)
    assert data["slow_decoding"]["measured_tps"] < data["slow_decoding"]["predicted_tps"] / 2
    assert data["predicted_tokens_per_s"] == pytest.approx(data["plan"]["speed"]["decode_tps"], rel=0.01)
