"""The command line, run for real in subprocesses on the demo model."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

from localr1 import __version__
from tests.cli_helpers import cpu_to_first_output, localr1, read_until, start, wait_for_cpu


def test_version() -> None:
    result = localr1("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"localr1 {__version__}"


@pytest.mark.model
def test_run_streams_answer_to_stdout() -> None:
    result = localr1("run", "-t", "0", "-n", "16", "What is the capital of France? Answer in one sentence.")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


@pytest.mark.model
def test_run_json_has_thinking_answer_and_stats() -> None:
    result = localr1("run", "--json", "-t", "0", "-n", "8", "Say hello.")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"thinking", "answer", "stats", "model", "load", "sampling"}
    assert data["stats"]["generated_tokens"] <= 8
    assert data["stats"]["stop_reason"] in ("eos", "length")
    assert data["sampling"]["temperature"] == 0
    assert data["answer"]


@pytest.mark.model
def test_run_reads_prompt_from_stdin() -> None:
    prompt = "What is the capital of France? Answer in one sentence."
    result = localr1("run", "--json", "-t", "0", "-n", "16", "-", stdin=prompt)
    assert result.returncode == 0, result.stderr
    assert "Paris" in json.loads(result.stdout)["answer"]


@pytest.mark.model
def test_demo_sampling_defaults_come_from_models_toml() -> None:
    data = json.loads(localr1("run", "--json", "-n", "2", "hi").stdout)
    assert data["sampling"]["temperature"] == 0.2 and data["sampling"]["top_p"] == 0.9


@pytest.mark.model
def test_r1_model_gets_r1_sampling_and_thinking_channel(r1_demo_path: Path) -> None:
    result = localr1("run", "--json", "-m", str(r1_demo_path), "-n", "12", "--seed", "3", "Hi")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sampling"]["temperature"] == 0.6 and data["sampling"]["top_p"] == 0.95
    # The R1 prompt ends inside <think>: the demo never closes it, so all 12 tokens are reasoning.
    assert data["thinking"].strip() and data["answer"] == ""
    assert data["stats"]["generated_tokens"] == 12 and data["stats"]["thinking_cut_off"] is True
    assert data["stop_reason"] == "length" and data["truncated"] is True


@pytest.mark.model
def test_hide_thinking_prints_no_reasoning_and_showing_prints_all_of_it(r1_demo_path: Path) -> None:
    args = ("run", "-m", str(r1_demo_path), "-n", "8", "-t", "0", "Hi")
    reference = json.loads(localr1(*args[:1], "--json", *args[1:]).stdout)
    thinking = reference["thinking"]
    assert thinking.strip() and reference["answer"] == ""
    shown = localr1(*args)
    hidden = localr1(*args[:1], "--hide-thinking", *args[1:])
    assert shown.returncode == hidden.returncode == 0
    notice = "localr1: the model was still thinking when it reached the 8-token limit, no answer: raise --max-tokens\n"
    plan, rest = hidden.stderr.split("\n", 1)  # the planner's choice comes first, in one line
    assert plan.startswith("localr1: plan: Q4_1 (r1-demo.gguf)") and shown.stderr.startswith(plan + "\n")
    assert rest == notice  # nothing else but the notice that the limit ended the thinking
    assert shown.stderr == plan + "\n" + thinking + "\n" + notice  # the reasoning, the notice (no tty, no colour)
    assert shown.stdout == hidden.stdout == ""  # no answer either way: nothing on stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "-m", "/nonexistent/model.gguf", "hi"], "model file not found"),
        (["run", "-m", "no-such-model", "hi"], "unknown model 'no-such-model'"),
        (["run", "-m", "r1-qwen-7b", "hi"], "is not on this machine"),
        (["run", "   "], "the prompt is empty"),
        (["run", "--kv-type", "q8_0", "--no-flash-attn", "hi"], "needs flash attention"),
        (["info", "/nonexistent.gguf"], "model file not found"),
    ],
)
def test_errors_are_one_line_without_traceback(args: list[str], message: str) -> None:
    result = localr1(*args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("localr1: error:") and message in lines[0]
    assert "Traceback" not in result.stderr


def test_debug_flag_shows_the_traceback() -> None:
    result = localr1("--debug", "run", "-m", "/nonexistent/model.gguf", "hi")
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_bad_gguf_does_not_crash_the_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\xff" * 64)
    result = localr1("run", "-m", str(bad), "hi")
    assert result.returncode == 1 and "corrupt or truncated GGUF header" in result.stderr


def test_info_describes_the_demo_model() -> None:
    result = localr1("info", "demo", "--json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["architecture"] == "llama" and data["quant_type"] == "Q4_1" and data["layers"] == 30
    assert "chatml" in localr1("info", "demo").stdout


def test_models_lists_the_family() -> None:
    out = localr1("models").stdout
    for key in ("demo", "r1-qwen-1.5b", "r1-qwen-7b", "r1-llama-8b", "r1-qwen-14b", "r1-qwen-32b", "r1-llama-70b"):
        assert key in out


STORY = "Write a very long story about a dragon."
STATS = re.compile(r"^\[(\d+) prompt tokens \((\d+) evaluated\), (\d+) generated, ttft [\d.]+s, [\d.]+ tok/s, "
                   r"stop: (\w+)\]$", re.M)


@pytest.mark.model
def test_ctrl_c_stops_cleanly_and_keeps_the_partial_answer() -> None:
    proc = start("run", "--stats", "-t", "0", "-n", "3000", "--ctx", "4096", STORY)
    first = read_until(proc, lambda out: len(out.strip()) > 0, timeout=240)  # the answer is streaming
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    stats = STATS.search(err.decode())
    assert stats is not None, err
    generated, stop = int(stats.group(3)), stats.group(4)
    assert stop == "cancelled" and 0 < generated < 3000
    partial = (first + rest).decode()
    assert partial.endswith("\n") and partial.strip()
    # Greedy decoding: the same prompt run for exactly that many tokens gives exactly what was printed.
    full = localr1("run", "--json", "-t", "0", "-n", str(generated), "--ctx", "4096", STORY, timeout=240)
    assert json.loads(full.stdout)["answer"] == partial[:-1]


@pytest.mark.model
def test_ctrl_c_with_json_reports_cancelled(demo_path: Path) -> None:
    args = ("run", "-t", "0", "-n", "3000", "--ctx", "4096", STORY)
    first_token = cpu_to_first_output(demo_path, *args)  # measured on the same run that streams
    proc = start(*args[:1], "--json", *args[1:])
    wait_for_cpu(proc, demo_path, 2 * first_token + 1.0, timeout=240)  # loaded and well into the answer
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    data = json.loads(out)
    assert data["stop_reason"] == data["stats"]["stop_reason"] == "cancelled"
    assert 0 < data["stats"]["generated_tokens"] < 3000 and data["answer"].strip()


_CTRL_C_WHILE_IMPORTING = """
import runpy, sys

TARGET = sys.argv[1]

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == TARGET:
            raise KeyboardInterrupt  # as if Ctrl-C arrived while this module was being imported
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = ["localr1", "plan", "r1-qwen-7b", "--hardware", "laptop-8gb"]
runpy.run_module("localr1", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("module", ["localr1.cli", "localr1.commands.plan"])
def test_ctrl_c_while_the_command_line_is_imported_is_one_line(module: str) -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", _CTRL_C_WHILE_IMPORTING, module], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ), check=False)
    assert result.returncode == 130 and result.stderr == "localr1: interrupted\n"


@pytest.mark.model
def test_run_loading_and_sampling_options_reach_the_engine(r1_demo_path: Path) -> None:
    base = ("run", "--json", "-m", str(r1_demo_path), "-t", "0", "-n", "4", "--ctx", "512")
    plain = json.loads(localr1(*base, "--no-flash-attn", "Say hello.").stdout)  # auto would let the planner pick
    result = localr1(*base, "--system", "You are a pirate. Always answer like one.", "--top-k", "7", "--threads",
                     "1", "--no-mmap", "--flash-attn", "Say hello.")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["load"]["threads"] == 1 and data["load"]["use_mmap"] is False
    assert data["load"]["flash_attention"] is True and data["load"]["context_size"] == 512
    assert data["sampling"]["top_k"] == 7 and plain["sampling"]["top_k"] != 7
    assert plain["load"]["use_mmap"] is True and plain["load"]["flash_attention"] is False
    # R1 has no system turn: the text is folded into the user's message, so the prompt grows by about its length
    assert data["stats"]["prompt_tokens"] >= plain["stats"]["prompt_tokens"] + 8
    assert data["stats"]["generated_tokens"] > 0


@pytest.mark.model
def test_the_plan_shown_says_the_threads_asked_for() -> None:
    """`--threads 1` loaded one thread, but the plan line (and --json's plan) said the planner's count."""
    result = localr1("run", "--json", "-t", "0", "-n", "2", "--ctx", "512", "--threads", "1", "Say hello.")
    data = json.loads(result.stdout)
    assert data["load"]["threads"] == data["plan"]["threads"] == 1, data["plan"]
    assert data["plan"]["summary"].endswith(" 1 thread") or " 1 thread," in data["plan"]["summary"], data["plan"]


@pytest.mark.model
def test_run_stats_prints_one_timing_line() -> None:
    result = localr1("run", "--stats", "-t", "0", "-n", "4", "Say hello.")
    assert result.returncode == 0, result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("[")]
    stats = STATS.match(line)
    assert stats is not None, line
    assert int(stats.group(3)) == 4 and stats.group(4) == "length" and int(stats.group(1)) > 0
