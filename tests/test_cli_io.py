"""Input and output of `localr1 run`: a prompt that is not UTF-8 is a one-line error, not a crash in the tokenizer;
a reader that goes away mid-answer ends the run quietly, not with a crash."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from localr1.commands.run import read_prompt
from localr1.errors import ConfigError


def _localr1(args: list[str | bytes], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "localr1", *args], input=stdin, capture_output=True, timeout=120,
                          env=dict(os.environ), check=False)


def test_invalid_bytes_on_standard_input() -> None:
    result = _localr1(["run", "-n", "2", "-"], stdin=b"hi \xff\xfe there")
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr.decode().strip().splitlines() == [
        "localr1: error: standard input is not UTF-8 text (an invalid byte at position 3); "
        "convert it to UTF-8 first, e.g. with iconv -t UTF-8"]


def test_invalid_bytes_in_the_prompt_argument() -> None:
    result = _localr1(["run", "-n", "2", b"a\xffb"])
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and "the prompt is not UTF-8 text" in lines[0]


def test_strict_decoding_streams_too() -> None:
    strict = io.TextIOWrapper(io.BytesIO(b"ok \xc3"), encoding="utf-8", errors="strict")
    with pytest.raises(ConfigError, match="standard input is not UTF-8"):
        read_prompt("-", strict)
    assert read_prompt("-", io.StringIO("ça va")) == "ça va"


@pytest.mark.model
def test_a_reader_that_goes_away_mid_answer() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "localr1", "run", "-t", "0", "-n", "300",
                             "Write a long poem about the sea."], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ))
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(5)) == 5  # like `localr1 run ... | head -c 5`
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1, err  # not killed by a signal (SIGSEGV when llama.cpp ran on at exit)
    assert b"Traceback" not in err and b"Error" not in err
