"""`localr1 run` shows escape sequences from the model's answer on a terminal, and passes the exact text on
to a pipe or in --json (a real process, a real pseudo-terminal, the demo model with one token renamed)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import gguf
import pytest

from tests.cli_helpers import LOCALR1, localr1
from tests.gguf_edit import BOOL, R1_TEMPLATE, STRING, rewrite_gguf

PAYLOAD = "\x1b]0;pwned\x07\x9b31m"  # retitle the terminal, then a one-byte CSI (C1)
PROMPT = "Say hello"
RUN = ("run", "--temperature", "0", "--max-tokens", "4")


def _byte_level(text: str) -> str:
    """`text` as a byte-level BPE vocabulary spells it (GPT-2's byte-to-character table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return "".join(table[b] for b in text.encode())


def _first_token(model: Path, part: str) -> str:
    """The text of the model's first greedy token for PROMPT (`part`: answer or thinking, whose leading blank lines
    are not shown). It depends on the CPU's kernels ("I" on one machine, "Hello" on another), so it is asked for,
    not assumed: the first token of what the model wrote, tokenized by the model itself."""
    import llama_cpp

    done = localr1("run", "--temperature", "0", "--max-tokens", "4", "--json", "-m", str(model), PROMPT)
    assert done.returncode == 0, done.stderr
    text = str(json.loads(done.stdout)[part])
    assert text, done.stdout
    vocab = llama_cpp.Llama(model_path=str(model), vocab_only=True, verbose=False)
    try:
        first = vocab.tokenize(text.encode(), add_bos=False, special=False)[0]
        return vocab.detokenize([first]).decode()
    finally:
        vocab.close()


def _escaping_tokens(demo_path: Path, first: str) -> list[str]:
    """The demo's vocabulary with the token `first` reading PAYLOAD + `first`."""
    field = gguf.GGUFReader(demo_path).fields["tokenizer.ggml.tokens"]
    tokens = [bytes(field.parts[i]).decode() for i in field.data]
    tokens[tokens.index(_byte_level(first))] = _byte_level(PAYLOAD + first)
    return tokens


@pytest.fixture(scope="module")
def escaping_model(demo_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo model whose first greedy token for PROMPT reads PAYLOAD before its text: the answer starts with
    escape bytes; (model, that token's own text)."""
    first = _first_token(demo_path, "answer")
    out = tmp_path_factory.mktemp("escaping") / "escaping-demo.gguf"
    tokens = _escaping_tokens(demo_path, first)
    return rewrite_gguf(demo_path, out, tokenizer__ggml__tokens=(gguf.GGUFValueType.ARRAY, tokens)), first


@pytest.fixture(scope="module")
def escaping_r1_model(demo_path: Path, r1_demo_path: Path,
                      tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The same with the R1 template: the reply starts inside <think>, so the escape bytes come in the thinking."""
    first = _first_token(r1_demo_path, "thinking")
    out = tmp_path_factory.mktemp("escaping") / "escaping-r1-demo.gguf"
    tokens = _escaping_tokens(demo_path, first)
    model = rewrite_gguf(demo_path, out, tokenizer__ggml__tokens=(gguf.GGUFValueType.ARRAY, tokens),
                         tokenizer__chat_template=(STRING, R1_TEMPLATE), tokenizer__ggml__add_bos_token=(BOOL, True))
    return model, first


def _run_on_a_terminal(*args: str, stream: str = "stdout", timeout: float = 240) -> tuple[int, bytes]:
    """Run `localr1 ARGS` with `stream` (stdout or stderr) on a pseudo-terminal and the other one discarded; returns
    the exit code and every byte written to the terminal."""
    leader, follower = pty.openpty()
    out, err = (follower, subprocess.DEVNULL) if stream == "stdout" else (subprocess.DEVNULL, follower)
    proc = subprocess.Popen([*LOCALR1, *args], stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=dict(os.environ))
    os.close(follower)
    got = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                got += chunk
            elif proc.poll() is not None:
                break
        else:
            raise AssertionError(f"no end within {timeout:.0f} s; got {got!r}")
        return proc.wait(30), got
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)


@pytest.mark.model
def test_run_answer_into_a_pipe_and_json_is_the_exact_text(escaping_model: tuple[Path, str]) -> None:
    model, first = escaping_model
    piped = localr1(*RUN, "-m", str(model), PROMPT)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith(PAYLOAD + first)  # the renamed token came first: the test's premise holds
    as_json = localr1(*RUN, "--json", "-m", str(model), PROMPT)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["answer"].startswith(PAYLOAD + first)


@pytest.mark.model
def test_run_answer_on_a_terminal_shows_escape_sequences(escaping_model: tuple[Path, str]) -> None:
    model, first = escaping_model
    code, written = _run_on_a_terminal(*RUN, "-m", str(model), PROMPT)
    assert code == 0, written
    assert written.startswith(b"\\x1b]0;pwned\\x07\\x9b31m" + first.encode()), written
    assert not any(bad in written for bad in (b"\x1b", b"\x07", "\x9b".encode()))


@pytest.mark.model
def test_run_thinking_on_a_terminal_shows_escape_sequences(escaping_r1_model: tuple[Path, str]) -> None:
    model, first = escaping_r1_model
    as_json = localr1(*RUN, "--json", "-m", str(model), PROMPT)
    assert json.loads(as_json.stdout)["thinking"].startswith(PAYLOAD + first)  # the premise: it comes in the thinking
    code, written = _run_on_a_terminal(*RUN, "-m", str(model), PROMPT, stream="stderr")
    assert code == 0, written
    assert b"\\x1b]0;pwned\\x07\\x9b31m" + first.encode() in written, written
    assert not any(bad in written for bad in (b"\x1b]", b"\x07", "\x9b".encode()))  # the dimming (ESC [2m) is ours


@pytest.mark.model
def test_a_generation_error_is_printed_with_its_escapes_shown(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """llama_decode failing mid-answer with a message carrying escape bytes (and a line break): one plain line."""
    from collections.abc import Generator
    from typing import Any

    from localr1.cli import main
    from localr1.engine.engine import Engine

    real = Engine._token_source

    def failing(self: Engine, prepared: Any, sp: Any) -> Generator[int, Any, None]:
        tokens = real(self, prepared, sp)
        yield next(tokens)  # a real first token, then llama.cpp's failure
        tokens.close()
        raise RuntimeError(f"llama_decode returned -3{PAYLOAD}\nsecond line")

    monkeypatch.setattr(Engine, "_token_source", failing)
    assert main(["run", "--temperature", "0", "--max-tokens", "8", PROMPT]) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last == "localr1: error: generation failed: llama_decode returned -3\\x1b]0;pwned\\x07\\x9b31m second line"
    assert "\x1b" not in err and "\x07" not in err and "\x9b" not in err
