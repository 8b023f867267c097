"""A model process's TCP connections to its RPC workers, seen from inside it (llama.cpp does not expose them).

llama.cpp's RPC client waits on a worker without a limit (a worker stopped or frozen, not closed, hangs every
answer for good) and aborts the process at its next call when a worker has gone away. Here the model's child
process looks at its own sockets: one the peer closed while nothing was decoding is found before the next
request, and every wait on a worker is given a limit, after which llama.cpp's call fails (and the child aborts
with an error the parent turns into one line).
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator

WORKER_TIMEOUT_ENV = "LOCALR1_WORKER_TIMEOUT"
DEFAULT_WORKER_TIMEOUT_S = 120.0


def worker_timeout_s() -> float:
    """Seconds a worker may take to answer one call (LOCALR1_WORKER_TIMEOUT; 0 or a bad value: the default)."""
    try:
        value = float(os.environ.get(WORKER_TIMEOUT_ENV, ""))
    except ValueError:
        return DEFAULT_WORKER_TIMEOUT_S
    return value if 0 < value < 1e6 else DEFAULT_WORKER_TIMEOUT_S


def _connections() -> Iterator[tuple[socket.socket, str]]:
    """Copies of this process's connected TCP sockets and their peers ("address:port"); closing a copy leaves
    the connection open. Linux and macOS list a process's descriptors; elsewhere none are found."""
    folder = next((f for f in ("/proc/self/fd", "/dev/fd") if os.path.isdir(f)), None)
    for name in os.listdir(folder) if folder else []:
        try:
            if not stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except (OSError, ValueError):
            continue
        with sock:
            if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
                continue
            try:
                peer = sock.getpeername()
            except OSError:  # not connected (a listener)
                continue
            yield sock, f"{peer[0]}:{peer[1]}"


def closed_connections() -> list[str]:
    """The peers of connections the other end has closed (or reset), looked at with a peek that does not wait."""
    closed: list[str] = []
    for sock, peer in _connections():
        try:
            ended = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:  # open, nothing to read
            continue
        except OSError:  # reset by the peer
            ended = True
        if ended:
            closed.append(peer)
    return closed


def limit_waits(seconds: float) -> int:
    """Give every connection a send and receive timeout; returns how many were given one."""
    whole = int(seconds)
    value = whole.to_bytes(8, "little", signed=True) + int((seconds - whole) * 1e6).to_bytes(8, "little", signed=True)
    count = 0
    for sock, _peer in _connections():
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)  # struct timeval
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
        except OSError:
            continue
        count += 1
    return count
