"""A model process of our own: llama.cpp's RPC client aborts the process that loses a worker, so a model split
across workers runs in a child, and the parent turns the child's death into an error.

Both sides are here: `ChildProcess` starts `python -m MODULE FD` with a connection over a socket pair and its
stderr in a file (llama.cpp's abort message never reaches a terminal), and reaps it; `child_connection` is the
child's end; `Failed` carries a `LocalR1Error` across; `lost_what` says which worker went away.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import IO, TypeVar

from localr1 import errors
from localr1.engine.rpc_sockets import WORKER_TIMEOUT_ENV, worker_timeout_s
from localr1.errors import LocalR1Error
from localr1.workers import Endpoint, lost_workers

T = TypeVar("T")
CLOSE_TIMEOUT_S = 10.0
ABORT_MARK = "Remote RPC server crashed"  # what ggml-rpc prints before it aborts


@dataclass(frozen=True)
class Failed:
    """A `LocalR1Error` raised in the child, by its class name and message."""

    kind: str
    message: str

    @classmethod
    def of(cls, exc: LocalR1Error) -> Failed:
        """The error, ready to send."""
        return cls(type(exc).__name__, exc.message)

    def error(self) -> LocalR1Error:
        """The error again, as its own class where `localr1.errors` has it."""
        kind = getattr(errors, self.kind, LocalR1Error)
        if isinstance(kind, type) and issubclass(kind, LocalR1Error):
            return kind(self.message)
        return LocalR1Error(self.message)


class ChildProcess:
    """`python -m MODULE FD`: one connection to it, its stderr kept in a file until it is reaped."""

    def __init__(self, module: str) -> None:
        # An unnamed file (deleted at once where O_TMPFILE is missing): nothing is left in the temporary folder,
        # whatever stops this process, Ctrl-C in the middle of creating it included.
        self._log: IO[bytes] | None = tempfile.TemporaryFile(prefix="localr1-model-", suffix=".log")  # noqa: SIM115 (kept open until reaped)
        self._proc: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        try:
            ours, theirs = socket.socketpair()
            with ours, theirs:
                # A plain child (not multiprocessing's spawn, which re-runs the caller's main module).
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", module, str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=self._log, env={**os.environ, "GGML_NO_BACKTRACE": "1"})  # no gdb on abort
                self.conn = Connection(os.dup(ours.fileno()))
        except BaseException:  # Ctrl-C while it starts: no child is left behind
            self.kill()
            raise

    @property
    def alive(self) -> bool:
        """True until the child is reaped."""
        return self.conn is not None

    def kill(self) -> None:
        """Stop the child at once (its load was interrupted) and reap it."""
        if self._proc is not None:
            self._proc.kill()
        self.reap()

    def reap(self) -> tuple[int | None, str]:
        """Close the connection and wait for the child (killed after a while); its exit code and stderr.
        Later calls return (None, "")."""
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        code = None
        if self._proc is not None:
            try:
                code = self._proc.wait(CLOSE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                code = self._proc.wait()
            self._proc = None
        log = ""
        if self._log is not None:
            with contextlib.suppress(OSError, ValueError):
                self._log.seek(0)
                log = self._log.read().decode(errors="replace")
            self._log.close()
            self._log = None
        return code, log


def lost_what(workers: tuple[Endpoint, ...], code: int | None, log: str, when: str) -> tuple[str, bool]:
    """What stopped the child `when` ("mid-answer", "while the model was loading"), and whether a worker did:
    ("worker 127.0.0.1:50052 went away mid-answer", True)."""
    gone = lost_workers(workers)
    if gone:
        return f"worker {', '.join(map(str, gone))} went away {when}", True
    if ABORT_MARK in log:  # each one still accepts connections: frozen, or it failed the call
        names = f"worker {workers[0]}" if len(workers) == 1 else f"one of the workers {', '.join(map(str, workers))}"
        return (f"{names} stopped answering {when} (no reply in {worker_timeout_s():g} s, "
                f"{WORKER_TIMEOUT_ENV} sets how long, or it failed)"), True
    return f"the model process stopped {when} (exit code {code}: {last_line(log)})", False


def last_line(text: str) -> str:
    """The last non-blank line, or "no message"."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def child_connection(argv: list[str]) -> Connection:
    """The child's end: it dies with its parent, and talks over the descriptor it was given."""
    from localr1.engine.rpc import die_with_parent

    die_with_parent()
    return Connection(int(argv[1]))


def load_or_fail(conn: Connection, load: Callable[[], T]) -> T | None:
    """The child's engine, or None once the reason it could not load has been sent to the parent."""
    try:
        return load()
    except LocalR1Error as exc:
        conn.send(Failed.of(exc))
    except Exception as exc:  # a native failure: say it in one line
        conn.send(Failed("ModelLoadError", f"llama.cpp could not load the model: {exc}"))
    return None
