"""The real `localr1 chat` on the demo model inside tmux: answers appear, are stored, and survive SIGKILL."""

from __future__ import annotations

import itertools
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from localr1.store import ConversationStore, StoredMessage

pytestmark = [pytest.mark.needs("tmux"), pytest.mark.model]


class Tmux:
    """A private tmux server running one localr1 chat."""

    def __init__(self, home: Path) -> None:
        self.socket = f"localr1-test-{os.getpid()}-{time.monotonic_ns()}"
        self.home = home

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout

    def start(self, name: str, *options: str) -> None:
        options = options or ("--model", "demo")
        command = (f"exec env LOCALR1_HOME={shlex.quote(str(self.home))} TERM=xterm-256color "
                   f"{shlex.quote(sys.executable)} -m localr1 chat {shlex.join(options)}")
        self.run("new-session", "-d", "-s", name, "-x", "120", "-y", "40", command)

    def screen(self, name: str) -> str:
        return self.run("capture-pane", "-p", "-t", name)

    def keys(self, name: str, *keys: str) -> None:
        self.run("send-keys", "-t", name, *keys)

    def buffer(self) -> str:
        """The newest paste buffer (what OSC 52 copied), or "" when there is none."""
        result = subprocess.run(["tmux", "-L", self.socket, "show-buffer"], capture_output=True, text=True,
                                check=False, timeout=10)
        return result.stdout if result.returncode == 0 else ""

    def pid(self, name: str) -> int:
        return int(self.run("display-message", "-p", "-t", name, "#{pane_pid}").strip())

    def kill_server(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)


def wait(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def log_saves(home: Path) -> None:
    """Create the chat's database with a trigger that logs every save of an answer's text (a poll would miss
    some when the machine is busy)."""
    ConversationStore(home / "data" / "conversations.db").close()
    conn = sqlite3.connect(home / "data" / "conversations.db")
    with conn:
        conn.execute("CREATE TABLE test_saves (status TEXT, length INTEGER, at REAL)")
        conn.execute("CREATE TRIGGER test_log_save AFTER UPDATE OF content ON messages WHEN NEW.role = 'assistant' "
                     "BEGIN INSERT INTO test_saves VALUES (NEW.status, length(NEW.content), NEW.updated_at); END")
    conn.close()


def saves_while_streaming(home: Path) -> list[float]:
    """When the answer's text was saved while it streamed (a save with some text), oldest first."""
    conn = sqlite3.connect(f"file:{home / 'data' / 'conversations.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT at FROM test_saves WHERE status = 'streaming' AND length > 0 ORDER BY at")
        return [float(at) for (at,) in rows]
    finally:
        conn.close()


@pytest.fixture
def tmux(private_home: Path) -> Iterator[Tmux]:
    config = private_home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text("model = 'demo'\ntemperature = 0.0\nmax_tokens = 3000\n")
    server = Tmux(private_home)
    yield server
    server.kill_server()


def assistant_rows(home: Path) -> list[StoredMessage]:
    db = home / "data" / "conversations.db"
    if not db.exists():
        return []
    store = ConversationStore(db)
    try:
        return [m for c in store.conversations() for m in store.messages(c.id) if m.role == "assistant"]
    finally:
        store.close()


def test_chat_answers_on_the_demo_model_and_stores_it(tmux: Tmux, private_home: Path) -> None:
    tmux.start("chat")
    wait(lambda: "SmolLM2" in tmux.screen("chat") or "Smollm2" in tmux.screen("chat"), 60, "the model to load")
    tmux.keys("chat", "What is the capital of France? Answer in one sentence.", "Enter")
    wait(lambda: "Paris" in tmux.screen("chat"), 60, "the answer on screen")
    wait(lambda: any(m.status == "complete" for m in assistant_rows(private_home)), 60, "the stored answer")
    row = assistant_rows(private_home)[-1]
    assert "Paris" in row.content and row.stats["generated_tokens"] > 0
    tmux.keys("chat", "C-q")


def test_sigkill_mid_answer_loses_at_most_a_second(tmux: Tmux, private_home: Path) -> None:
    log_saves(private_home)
    tmux.start("chat")
    wait(lambda: "Smollm2" in tmux.screen("chat") or "SmolLM2" in tmux.screen("chat"), 60, "the model to load")
    # greedy, the demo's essay streams for ~3.5 s here (1,600 characters): the kill must come early, so it comes
    # after the second save of the streaming answer, and the saves' spacing is what is checked
    tmux.keys("chat", "Write a long essay about the history of the Roman Empire, with ten chapters.", "Enter")
    wait(lambda: len(saves_while_streaming(private_home)) >= 2, 60, "two saves of the streaming answer", poll=0.02)
    killed_at = time.time()
    os.kill(tmux.pid("chat"), signal.SIGKILL)
    rows = assistant_rows(private_home)
    assert rows[-1].status == "streaming"  # it really died mid-answer
    saves = saves_while_streaming(private_home)
    gaps = [later - earlier for earlier, later in itertools.pairwise(saves)]
    assert max(gaps) <= 1.0, f"saves {gaps} s apart while streaming"
    assert killed_at - saves[-1] <= 1.0

    tmux.start("again")
    wait(lambda: "interrupted" in tmux.screen("again"), 60, "the interrupted mark")
    after = assistant_rows(private_home)[-1]
    assert after.status == "interrupted" and after.content == rows[-1].content
    tmux.keys("again", "C-q")


def test_sigterm_mid_answer_saves_it_and_exits_143(tmux: Tmux, private_home: Path) -> None:
    """`kill` (or a closing session) ends the app as Ctrl+Q does: the answer so far saved as stopped, the terminal
    given back, exit 143. Before, SIGTERM killed it outright: the answer stayed 'streaming' and no line was said."""
    tmux.start("chat")
    tmux.run("set-window-option", "-t", "chat", "remain-on-exit", "on")
    wait(lambda: "Smollm2" in tmux.screen("chat") or "SmolLM2" in tmux.screen("chat"), 60, "the model to load")
    tmux.keys("chat", "Write a long essay about the history of the Roman Empire, with ten chapters.", "Enter")
    wait(lambda: any(m.content for m in assistant_rows(private_home)), 60, "the answer to stream", poll=0.02)
    os.kill(tmux.pid("chat"), signal.SIGTERM)
    wait(lambda: tmux.run("display-message", "-p", "-t", "chat", "#{pane_dead}").strip() == "1", 30, "the exit")
    assert tmux.run("display-message", "-p", "-t", "chat", "#{pane_dead_status}").strip() == "143"
    last = assistant_rows(private_home)[-1]
    assert last.status in ("stopped", "complete", "truncated") and last.content.strip()


def test_broken_settings_ctx_copy_and_quit(tmux: Tmux, private_home: Path) -> None:
    """A broken config.toml falls back to defaults with a notice; --ctx sizes the context; Ctrl+O copies
    the answer through OSC 52 (tmux keeps it as a paste buffer); Ctrl+Q quits with exit code 0."""
    (private_home / "config" / "config.toml").write_text("temperature = 'hot'\n")
    tmux.start("chat", "--ctx", "2048", "--model", "demo")
    tmux.run("set-option", "-s", "set-clipboard", "on")
    tmux.run("set-window-option", "-t", "chat", "remain-on-exit", "on")
    wait(lambda: "Smollm2" in tmux.screen("chat") or "SmolLM2" in tmux.screen("chat"), 60, "the model to load")
    screen = tmux.screen("chat")
    assert "bad settings in" in screen and "ctx 0/2.0k" in screen, screen
    tmux.keys("chat", "What is the capital of France? Answer in one sentence.", "Enter")
    wait(lambda: any(m.status in ("complete", "truncated") for m in assistant_rows(private_home)), 120,
         "the stored answer")
    answer = assistant_rows(private_home)[-1].content
    assert "Paris" in answer
    tmux.keys("chat", "C-o")
    wait(lambda: "Paris" in tmux.buffer(), 20, "the copied answer in tmux's buffer")
    assert tmux.buffer() == answer
    tmux.keys("chat", "C-q")
    wait(lambda: tmux.run("display-message", "-p", "-t", "chat", "#{pane_dead}").strip() == "1", 30, "the exit")
    assert tmux.run("display-message", "-p", "-t", "chat", "#{pane_dead_status}").strip() == "0"
