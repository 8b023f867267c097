"""RPC workers from the client's side: parsing `host:port` lists and checking a worker before llama.cpp
talks to it (llama.cpp aborts the whole process on an unreachable worker, so that check runs in a child).

No llama_cpp import: the CLI and the planner use this module.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from localr1.errors import ConfigError, WorkerError

DEFAULT_PORT = 50052  # llama.cpp's rpc-server default
PROBE_TIMEOUT_S = 15.0
CONNECT_TIMEOUT_S = 3.0
ANSWER_TIMEOUT_S = 2.0  # a worker answers a HELLO in milliseconds, a web server a bad request as fast
HELLO_QUIET_S = 0.3  # the client sends its whole HELLO at once, then waits
MAX_HELLO_REPLY = 4096  # an RPC HELLO reply is a few dozen bytes; "HTTP/1.1" or "<!DOCTYP" read as a length is huge
START_HINT = "start it there with 'localr1 worker --host ADDRESS --port PORT'"


@dataclass(frozen=True)
class Endpoint:
    """A worker's address."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class WorkerInfo:
    """A reachable worker and the memory it lends, in bytes."""

    endpoint: Endpoint
    free: int
    total: int


def parse_endpoint(text: str) -> Endpoint:
    """`host:port` (IPv4 or a name); a ConfigError says what is wrong."""
    raw = text.strip()
    host, sep, port_text = raw.rpartition(":")
    if raw.startswith("[") or raw.count(":") > 1:
        raise ConfigError(f"worker '{raw}' is an IPv6 address, which llama.cpp's RPC does not support: give an "
                          "IPv4 address or a host name")
    if not sep:
        raise ConfigError(f"worker '{raw}' must be written host:port, e.g. 192.168.1.20:{DEFAULT_PORT}")
    if not host:
        raise ConfigError(f"worker '{raw}' has no host: write host:port, e.g. 192.168.1.20:{DEFAULT_PORT}")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(f"worker '{raw}' has no valid port (1 to 65535): write host:port")
    return Endpoint(host, int(port_text))


def parse_workers(text: str) -> tuple[Endpoint, ...]:
    """A comma-separated list of workers; empty text means none. Empty entries and duplicates are errors."""
    if not text.strip():
        return ()
    parts = [s.strip() for s in text.split(",")]
    if not all(parts):
        raise ConfigError(f"the worker list '{text.strip()}' has an empty entry: write host:port,host:port")
    endpoints = tuple(parse_endpoint(p) for p in parts)
    seen: set[Endpoint] = set()
    for e in endpoints:
        if e in seen:
            raise ConfigError(f"worker {e} is listed twice")
        seen.add(e)
    return endpoints


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connects(endpoint: Endpoint, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when a TCP connection opens, else why it did not (the operating system's words)."""
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def probe_worker(endpoint: Endpoint, timeout: float = PROBE_TIMEOUT_S) -> WorkerInfo:
    """Check that a llama.cpp RPC worker answers at `endpoint` and ask the memory it lends."""
    refused = connects(endpoint)
    if refused is not None:
        raise WorkerError(f"worker {endpoint} cannot be reached ({refused}): check the address, "
                          f"or {START_HINT}")
    if answers_unlike_a_worker(endpoint):
        raise WorkerError(f"{endpoint} does not answer as a llama.cpp RPC worker (is it `localr1 worker`?): check "
                          f"the port, or {START_HINT}")
    try:  # llama.cpp's own handshake, in a child: a failure there aborts the process that tries
        done = subprocess.run([sys.executable, "-m", "localr1.engine.rpc", "probe", str(endpoint)],
                              capture_output=True, text=True, timeout=timeout, check=False,
                              env=_child_env())
    except subprocess.TimeoutExpired:
        raise WorkerError(f"worker {endpoint} accepted the connection but did not answer in {timeout:.0f} s "
                          "(a worker serves one client at a time: is another localr1 using it?)") from None
    if done.returncode != 0:
        if "Failed to connect" in done.stderr:
            raise WorkerError(f"worker {endpoint} cannot be reached: check the address, or {START_HINT}")
        raise WorkerError(f"{endpoint} is not a compatible worker (another program listens there, or a "
                          "localr1 with another llama.cpp version): run 'localr1 worker' from this version there")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return WorkerInfo(endpoint, int(data["free"]), int(data["total"]))


def peer(endpoint: Endpoint, timeout: float = CONNECT_TIMEOUT_S) -> tuple[str, int] | None:
    """The address and port a connection to `endpoint` reaches (names resolved as connecting does); None if none."""
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as sock:
            address = sock.getpeername()
    except OSError:
        return None
    return str(address[0]), int(address[1])


def check_distinct(endpoints: tuple[Endpoint, ...]) -> None:
    """A ConfigError when two names reach the same worker (localhost:P and 127.0.0.1:P)."""
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(endpoints)))) as pool:
        reached = list(pool.map(peer, endpoints))
    first: dict[tuple[str, int], Endpoint] = {}
    for endpoint, address in zip(endpoints, reached, strict=True):
        if address is None:
            continue  # the probe says why it cannot be reached
        if address in first:
            where = Endpoint(*address)
            raise ConfigError(f"workers {first[address]} and {endpoint} are the same worker (both reach {where}): "
                              "list it once")
        first[address] = endpoint


@cache
def client_hello() -> bytes | None:
    """The HELLO this llama.cpp's RPC client opens with, caught on a local listener (None if it never came)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.2)  # short waits: a client that died (Ctrl-C reaches it too) ends the wait at once
        child = subprocess.Popen([sys.executable, "-m", "localr1.engine.rpc", "probe",
                                  f"127.0.0.1:{listener.getsockname()[1]}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_child_env())
        hello = b""
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        try:
            while True:
                try:
                    conn, _ = listener.accept()
                    break
                except TimeoutError:
                    if child.poll() is not None or time.monotonic() > deadline:
                        return None
            with conn:
                conn.settimeout(HELLO_QUIET_S)
                while chunk := conn.recv(4096):  # until the client waits for the answer
                    hello += chunk
        except TimeoutError:
            pass
        except OSError:
            return None
        finally:
            child.kill()
            child.wait()
    return hello or None


def answers_unlike_a_worker(endpoint: Endpoint) -> bool:
    """True when the server at `endpoint` answers a HELLO (and a blank line, which a web server needs to
    answer at all) with something other than an RPC reply, whose first 8 bytes are its small length."""
    hello = client_hello()
    if hello is None:
        return False
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=CONNECT_TIMEOUT_S) as sock:
            sock.sendall(hello + b"\r\n\r\n")
            sock.settimeout(ANSWER_TIMEOUT_S)
            head = b""
            while len(head) < 8 and (chunk := sock.recv(8 - len(head))):
                head += chunk
    except OSError:  # silent (a busy worker serves another client) or closed: llama.cpp's probe decides
        return False
    return len(head) == 8 and int.from_bytes(head, "little") > MAX_HELLO_REPLY


def probe_workers(endpoints: tuple[Endpoint, ...]) -> tuple[WorkerInfo, ...]:
    """Probe every worker (in parallel) once each is known to be listed once; the first failure is raised."""
    if not endpoints:
        return ()
    check_distinct(endpoints)
    with ThreadPoolExecutor(max_workers=min(8, len(endpoints))) as pool:
        futures = [pool.submit(probe_worker, e) for e in endpoints]
        return tuple(f.result() for f in futures)


def lost_workers(endpoints: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
    """The workers that no longer accept connections."""
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(endpoints)))) as pool:
        refused = list(pool.map(lambda e: connects(e, timeout=1.0), endpoints))
    return tuple(e for e, why in zip(endpoints, refused, strict=True) if why is not None)


def _child_env() -> dict[str, str]:
    """The environment for a child that calls into ggml: no gdb backtrace when it aborts."""
    return {**os.environ, "GGML_NO_BACKTRACE": "1"}

