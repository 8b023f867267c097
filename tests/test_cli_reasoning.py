"""`localr1 run` reasoning controls, run for real: Ctrl-C twice, SIGUSR1, --think-budget, --preset, --stats."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from localr1.commands.run import stats_text
from localr1.engine.events import GenerationStats
from localr1.presets import apply_preset, last_boxed
from tests.cli_helpers import LOCALR1, localr1

LONG = ["-t", "0", "-n", "2000", "--ctx", "4096", "--loop-guard", "off", "Explain why the sky is blue"]


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*LOCALR1, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))


def _wait_for_thinking(proc: subprocess.Popen[str]) -> str:
    """Read stderr until the model has written some thinking (stderr is not a terminal: no colour codes); the
    planner's one-line choice comes first and is not thinking."""
    assert proc.stderr is not None
    plan = proc.stderr.readline()
    assert plan.startswith("localr1: plan: "), plan
    seen = ""
    deadline = time.monotonic() + 300
    while len(seen.split()) < 4 and time.monotonic() < deadline:
        char = proc.stderr.read(1)
        if not char:
            break
        seen += char
    assert len(seen.split()) >= 4, seen
    return plan + seen


@pytest.mark.model
def test_first_ctrl_c_while_thinking_answers_now_and_a_second_one_stops(r1_demo_path: Path) -> None:
    proc = _start(["run", "-m", str(r1_demo_path), *LONG])
    early = _wait_for_thinking(proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    err = early + err
    assert proc.returncode == 130, err
    assert "press Ctrl-C again within 2 s to stop" in err
    assert "Traceback" not in err


@pytest.mark.model
def test_sigusr1_ends_the_thinking_and_the_answer_follows(r1_demo_path: Path) -> None:
    proc = _start(["run", "-m", str(r1_demo_path), "-t", "0", "-n", "30", "--ctx", "1024", "--loop-guard", "off",
                   "Explain why the sky is blue"])
    early = _wait_for_thinking(proc)
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=600)
    err = early + err
    assert proc.returncode == 0, err
    assert "answering now, as asked]" in err
    assert out.strip() and "</think>" not in out and "give my answer now" not in out


@pytest.mark.model
def test_budget_zero_json_has_no_thinking_and_a_boxed_field(r1_demo_path: Path) -> None:
    result = localr1("run", "-m", str(r1_demo_path), "--json", "-t", "0", "-n", "16", "--think-budget", "0",
                     "--preset", "math", "What is 2+2?", timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["thinking"] == "" and data["stats"]["thinking_tokens"] == 0
    assert data["stats"]["thinking_ended_by"] == "budget"
    assert "boxed" in data and data["preset"] == "math"
    assert data["thinking_control"]["budget_tokens"] == 0


@pytest.mark.model
def test_stats_start_on_their_own_line() -> None:
    result = localr1("run", "--stats", "-t", "0", "-n", "6", "Say hello.", timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n")
    plan, rest = result.stderr.split("\n", 1)  # the planner's one-line choice, then the stats on a line of their own
    assert plan.startswith("localr1: plan: ") and rest.lstrip().startswith("[")


@pytest.mark.parametrize(("value", "message"), [("lots", "tokens (2000) or time (90s, 2m)"), ("1.5", "whole number")])
def test_a_bad_think_budget_is_a_one_line_error(value: str, message: str) -> None:
    result = localr1("run", "--think-budget", value, "hi")
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_stats_line_names_the_thinking_and_the_loop() -> None:
    stats = GenerationStats(10, 10, 0, 50, 0.5, 1.0, 40.0, "repetition", thinking_tokens=30,
                            thinking_ended_by="budget", loop_detected_after=50)
    text = stats_text(stats)
    assert "30 thinking (ended by budget)" in text and "loop detected after 50 tokens" in text
    assert "stop: repetition" in text


def test_the_math_preset_is_folded_into_the_prompt_and_boxed_answers_come_out() -> None:
    assert apply_preset("What is 2+2?", "math").endswith("put your final answer within \\boxed{}.")
    assert apply_preset("hi", "plain") == "hi"
    assert last_boxed("so \\boxed{3} then \\boxed{\\frac{1}{2}} done") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{\\{a, b\\}}") == "\\{a, b\\}"
    assert last_boxed("\\boxed{4} and an unfinished \\boxed{5") == "4"
    assert last_boxed("no box here") is None


class _SigintOnFirstWrite(io.StringIO):
    """An error stream that sends this process SIGINT from inside its first write, as when Ctrl-C lands
    while the thinking is being printed rather than while a token is awaited."""

    sent = False

    def write(self, text: str) -> int:
        if not self.sent and text.strip():
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
        return super().write(text)


@pytest.mark.model
def test_ctrl_c_while_the_thinking_is_printed_answers_now(r1_demo_path: Path) -> None:
    from localr1.commands.run import InterruptPolicy, TerminalPrinter, _stream_reply, sigint_to
    from localr1.engine import ChatMessage
    from localr1.engine.engine import Engine
    from localr1.engine.params import LoadParams
    from localr1.engine.thinking import ThinkingControl
    from localr1.streaming import ThreadedStream
    from tests.conftest import GREEDY

    engine = Engine(r1_demo_path, LoadParams(context_size=1024), replace(GREEDY, max_tokens=120))
    try:
        err = _SigintOnFirstWrite()
        policy = InterruptPolicy(engine, err)
        messages = [ChatMessage("user", "Explain why the sky is blue")]
        stream = ThreadedStream(lambda: engine.chat(messages, None, ThinkingControl(loop_guard="off")))
        with sigint_to(policy):  # without it, KeyboardInterrupt escapes from the printer mid-line
            finished, _, _ = _stream_reply(stream, policy, TerminalPrinter(True, io.StringIO(), err, None), engine)
    finally:
        engine.close()
    assert err.sent and "press Ctrl-C again within 2 s to stop" in err.getvalue()
    assert not policy.cancelled and finished.thinking and finished.answer  # answered, not stopped
