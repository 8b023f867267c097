"""`localr1 worker`: lend this machine's memory and CPU to a localr1 elsewhere (llama.cpp's RPC server).

The server runs in a child process (`python -m localr1.engine.rpc serve`): the CLI never loads llama.cpp.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import subprocess
import sys
from typing import Any

from localr1.commands.options import THREADS, integer
from localr1.errors import ConfigError
from localr1.interrupts import terminate_as_interrupt
from localr1.workers import DEFAULT_PORT, Endpoint, is_loopback

MiB = 2**20
PORT = integer(1, 65535, what="a port number from 1 to 65535")
MEM = integer(1, 2**40 // MiB, what="a whole number of MiB, at least 1")
NO_AUTH_WARNING = (
    "the RPC protocol has no authentication and llama.cpp's server is not hardened against hostile clients: "
    "anyone who can reach {endpoint} can use this machine's memory and CPU. Listen only on a trusted network.")


def add_worker_parser(subparsers: Any) -> None:
    """Register `worker` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "worker", help="lend this machine's memory and CPU to localr1 on another machine (llama.cpp RPC)",
        description="Serve this machine's CPU and memory to `localr1 run/chat/plan/batch/serve --workers HOST:PORT` on "
                    "another machine: it holds some of the model's layers. No authentication: only on a "
                    "trusted network.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; e.g. a LAN address or "
                        "0.0.0.0 to accept other machines)")
    p.add_argument("--port", type=PORT, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    p.add_argument("--mem", type=MEM, metavar="MiB",
                   help="memory lent, in MiB (default: the RAM available; never more than is available)")
    p.add_argument("--threads", type=THREADS, default=0, help="CPU threads (default: physical cores)")
    p.set_defaults(handler=worker_command)


def check_can_listen(endpoint: Endpoint) -> None:
    """A ConfigError when the address cannot be bound (in use, not this machine's, unknown name)."""
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((endpoint.host, endpoint.port))
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ConfigError(f"cannot listen on {endpoint} ({why}): choose another --port, or an address of this "
                          "machine for --host") from None


def ipv4_address(host: str) -> str:
    """The numeric IPv4 address llama.cpp's RPC server can bind (it reads --host with inet_addr: no names, no IPv6)."""
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    if ":" in host:
        raise ConfigError(f"--host {host}: llama.cpp's RPC server listens on IPv4 addresses only; give one of this "
                          "machine's, e.g. 127.0.0.1")
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve --host {host!r} to an IPv4 address ({exc.strerror}): give an address of "
                          "this machine, e.g. 127.0.0.1") from None
    return str(infos[0][4][0])


def worker_command(args: argparse.Namespace) -> int:
    """Run the RPC server until Ctrl-C; returns its exit code (130 when interrupted)."""
    from localr1.engine.params import default_threads

    endpoint = Endpoint(ipv4_address(args.host), args.port)
    check_can_listen(endpoint)
    threads = args.threads or default_threads()
    lent = f"{args.mem} MiB" if args.mem else "the RAM available"
    print(f"localr1 worker: lending {lent} and {threads} threads on {endpoint}; "
          f"use it with --workers {endpoint} (Ctrl-C stops)", file=sys.stderr)
    if not is_loopback(endpoint.host):
        print(f"localr1: warning: {NO_AUTH_WARNING.format(endpoint=endpoint)}", file=sys.stderr)
    command = [sys.executable, "-m", "localr1.engine.rpc", "serve", str(endpoint), "--threads", str(threads)]
    if args.mem:
        command += ["--mem", str(args.mem * MiB)]
    child = subprocess.Popen(command, env={**os.environ, "GGML_NO_BACKTRACE": "1"})
    with terminate_as_interrupt() as stop:  # `kill` stops the server too, like Ctrl-C (exit 143)
        try:
            code = child.wait()
        except KeyboardInterrupt:
            child.terminate()
            child.wait()
            print("localr1 worker: stopped", file=sys.stderr)
            return 143 if stop.terminated else 130
    if code != 0:
        raise ConfigError(f"the worker stopped with exit code {code} (see the messages above)")
    return 0
