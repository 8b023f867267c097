"""The command line, run for real in subprocesses on the demo model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from localr1 import __version__
from tests.cli_helpers import LOCALR1, localr1


def test_version() -> None:
    result = localr1("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"localr1 {__version__}"


def test_run_streams_answer_to_stdout() -> None:
    result = localr1("run", "-t", "0", "-n", "16", "What is the capital of France? Answer in one sentence.")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


def test_run_json_has_thinking_answer_and_stats() -> None:
    result = localr1("run", "--json", "-t", "0", "-n", "8", "Say hello.")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"thinking", "answer", "stats", "model", "load", "sampling"}
    assert data["stats"]["generated_tokens"] <= 8
    assert data["stats"]["stop_reason"] in ("eos", "length")
    assert data["sampling"]["temperature"] == 0
    assert data["answer"]


def test_run_reads_prompt_from_stdin() -> None:
    prompt = "What is the capital of France? Answer in one sentence."
    result = localr1("run", "--json", "-t", "0", "-n", "16", "-", stdin=prompt)
    assert result.returncode == 0, result.stderr
    assert "Paris" in json.loads(result.stdout)["answer"]


def test_demo_sampling_defaults_come_from_models_toml() -> None:
    data = json.loads(localr1("run", "--json", "-n", "2", "hi").stdout)
    assert data["sampling"]["temperature"] == 0.2 and data["sampling"]["top_p"] == 0.9


def test_r1_model_gets_r1_sampling_and_thinking_channel(r1_demo_path: Path) -> None:
    result = localr1("run", "--json", "-m", str(r1_demo_path), "-n", "12", "--seed", "3", "Hi")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sampling"]["temperature"] == 0.6 and data["sampling"]["top_p"] == 0.95
    # The R1 prompt ends inside <think>: without a closing tag everything is reasoning.
    assert data["thinking"] or data["answer"]
    if "</think>" not in data["thinking"] + data["answer"]:
        assert data["thinking"] and not data["answer"]


def test_hide_thinking_prints_no_reasoning(r1_demo_path: Path) -> None:
    shown = localr1("run", "-m", str(r1_demo_path), "-n", "8", "-t", "0", "Hi")
    hidden = localr1("run", "-m", str(r1_demo_path), "-n", "8", "-t", "0", "--hide-thinking", "Hi")
    assert shown.returncode == hidden.returncode == 0
    # Only the one-line notice that the 8-token limit ended the thinking is left on stderr.
    notice = "localr1: the model was still thinking when it reached the 8-token limit, no answer: raise --max-tokens"
    assert hidden.stderr.strip() == notice
    assert shown.stderr.strip() != notice and shown.stderr.strip().endswith(notice)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "-m", "/nonexistent/model.gguf", "hi"], "model file not found"),
        (["run", "-m", "no-such-model", "hi"], "unknown model 'no-such-model'"),
        (["run", "-m", "r1-qwen-7b", "hi"], "is not on this machine"),
        (["run", "   "], "the prompt is empty"),
        (["run", "--kv-type", "q8_0", "hi"], "needs flash attention"),
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


def _interrupt_after_output(args: list[str]) -> tuple[int, str, str]:
    proc = subprocess.Popen([*LOCALR1, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    first = proc.stdout.read(1) if "--json" not in args else ""
    if "--json" in args:
        time.sleep(3)  # loading and a few tokens
    assert time.monotonic() < deadline
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, first + out, err


def test_ctrl_c_stops_cleanly_and_keeps_the_partial_answer() -> None:
    code, out, err = _interrupt_after_output(
        ["run", "-t", "0", "-n", "3000", "--ctx", "4096", "Write a very long story about a dragon."]
    )
    assert code == 130
    assert len(out.strip()) > 0
    assert "Traceback" not in err


def test_ctrl_c_with_json_reports_cancelled() -> None:
    code, out, _ = _interrupt_after_output(
        ["run", "--json", "-t", "0", "-n", "3000", "--ctx", "4096", "Write a very long story about a dragon."]
    )
    assert code == 130
    data = json.loads(out)
    assert data["stats"]["stop_reason"] == "cancelled"
    assert data["stats"]["generated_tokens"] < 3000
    # Ctrl-C now stops the prompt reading too: on a slow machine no token may have come yet.
    if data["stats"]["generated_tokens"] > 2:
        assert data["answer"]


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
