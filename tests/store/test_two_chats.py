"""Two chats on one database: starting the second leaves the answer the first is streaming alone; an answer left
streaming by a process that died (killed) is marked interrupted. Real processes and signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from localr1.store import ConversationStore

STREAMER = """
import sys
from pathlib import Path
from localr1.store import ConversationStore
store = ConversationStore(Path(sys.argv[1]))
cid = store.create_conversation("t")
mid = store.add_message(cid, "assistant", "partial", status="streaming")
store.update_message(mid, content="partial answer", thinking="", status="streaming")
print(mid, flush=True)
sys.stdin.read()  # streams until told to stop
"""


def _streamer(db: Path) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", STREAMER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def _status(store: ConversationStore, message_id: int) -> str:
    return str(store.conn.execute("SELECT status FROM messages WHERE id = ?", (message_id,)).fetchone()[0])


def test_a_second_chat_leaves_a_live_stream_alone_and_marks_it_once_its_process_is_killed(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    proc, mid = _streamer(db)
    try:
        second = ConversationStore(db)
        assert second.mark_interrupted() == 0  # the first chat is still answering
        assert _status(second, mid) == "streaming"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert second.mark_interrupted() == 1
    assert _status(second, mid) == "interrupted"
    assert [m.content for m in second.messages(1)] == ["partial answer"]
    assert second.mark_interrupted() == 0


def test_a_killed_chat_its_parent_has_not_reaped_yet_is_dead(tmp_path: Path) -> None:
    """A zombie keeps its id and start time until its parent waits for it (tmux, a shell): it writes no more."""
    db = tmp_path / "c.db"
    proc, mid = _streamer(db)
    proc.send_signal(signal.SIGKILL)
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:  # dead, and not reaped: no wait() yet
        time.sleep(0.01)
    try:
        store = ConversationStore(db)
        assert store.mark_interrupted() == 1 and _status(store, mid) == "interrupted"
    finally:
        proc.wait(30)


def test_a_stream_of_a_process_that_exited_is_marked(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    proc, mid = _streamer(db)
    proc.communicate("", timeout=30)  # exits without finishing the answer
    store = ConversationStore(db)
    assert store.mark_interrupted() == 1 and _status(store, mid) == "interrupted"


def test_a_reused_process_id_is_not_taken_for_the_writer(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    cid = store.create_conversation("t")
    mid = store.add_message(cid, "assistant", "partial", status="streaming")
    writer = {"writer": {"pid": os.getpid(), "started": 1.0}}  # this id, but a process started in 1970
    store.conn.execute("UPDATE messages SET stats = ? WHERE id = ?", (json.dumps(writer), mid))
    assert store.mark_interrupted() == 1


def test_the_end_of_an_answer_forgets_its_writer(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    cid = store.create_conversation("t")
    stopped = store.add_message(cid, "assistant", "", status="streaming")
    done = store.add_message(cid, "assistant", "", status="streaming")
    store.update_message(stopped, content="half", thinking="", status="stopped")
    store.update_message(done, content="all", thinking="", status="complete", stats={"generated_tokens": 3})
    assert [m.stats for m in store.messages(cid)] == [{}, {"generated_tokens": 3}]
