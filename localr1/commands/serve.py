"""`localr1 serve`: the OpenAI-compatible HTTP API on this machine, backed by the batched engine."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localr1.commands.run import load_request_from
from localr1.errors import ConfigError
from localr1.oserrors import file_system_error

if TYPE_CHECKING:
    from collections.abc import Callable

    from localr1.engine.batch.service import BatchService
    from localr1.loader import LoadAttempt

DEFAULT_PORT = 8080


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_api_key(args: argparse.Namespace) -> str | None:
    """The key from --api-key or --api-key-file (its first line), or None; printable ASCII only."""
    key = _read_key(args)
    if key is not None and not (key.isascii() and key.isprintable()):
        # it travels in an HTTP header: the openai client (httpx) cannot even send a key like 'ключ'
        raise ConfigError("the API key must be printable ASCII (clients send it in an HTTP header); choose another")
    return key


def _read_key(args: argparse.Namespace) -> str | None:
    if args.api_key_file is not None:
        path: Path = args.api_key_file
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            if isinstance(exc, OSError):
                raise file_system_error(exc, "read the API key file") from exc
            raise ConfigError(f"{path} is not UTF-8 text; put the key on its first line") from None
        key = (text.splitlines() or [""])[0].strip()
        if not key:
            raise ConfigError(f"{path} is empty; put the key on its first line")
        return key
    if args.api_key is not None:
        if not args.api_key.strip():
            raise ConfigError("--api-key is empty; give a key, or leave the option out on loopback")
        return str(args.api_key).strip()
    return None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the model loads so that a busy port fails fast."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve --host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                          "choose another --port (0 picks a free one)") from None
    sock.set_inheritable(True)
    return sock


def serve_command(args: argparse.Namespace) -> int:
    """Check the bind and key, load the model, and serve until Ctrl-C."""
    import uvicorn

    from localr1.loader import planned_batch_load
    from localr1.registry import resolve_model
    from localr1.server.app import ServerConfig, create_app
    from localr1.server.shutdown import StoppingServer

    key = read_api_key(args)
    if key is None and not is_loopback(args.host):
        raise ConfigError(f"--host {args.host} lets other machines reach the model: give --api-key or "
                          "--api-key-file, or serve on 127.0.0.1")
    sock = bind(args.host, args.port)
    try:
        resolved = resolve_model(args.model)
        overrides = {"temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k,
                     "max_tokens": args.max_tokens, "seed": args.seed}
        load = planned_batch_load(args.model, load_request_from(args), overrides, args.parallel)
        service, close = open_batch(load, args.parallel)
    except BaseException:
        sock.close()
        raise
    model_id = args.model if resolved.entry is not None else resolved.path.stem
    app = create_app(service, ServerConfig(model_id, key, args.max_body))
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    health = service.health()
    print(f"localr1: serving {model_id} on http://{shown}:{port}/v1 ({health['slots']} sequences of "
          f"{health['slot_context']} tokens{', API key required' if key else ''}{_workers_note(health['load'])}); "
          "Ctrl-C stops", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=3,
                            access_log=False)
    try:
        StoppingServer(config, service.close).run(sockets=[sock])
    finally:
        close()
        sock.close()
    return 0


def open_batch(load: LoadAttempt, parallel: int) -> tuple[BatchService, Callable[[], None]]:
    """The batch behind the server, and what frees it. With RPC workers the model runs in a child process
    (llama.cpp aborts the process that loses a worker); without, in this one, at no cost."""
    if load.params.workers:
        from localr1.engine.batch.isolated import IsolatedBatch

        isolated = IsolatedBatch(load.path, load.params, load.sampling, parallel, probed=True)
        return isolated, isolated.close
    from localr1.engine.batch import BatchEngine
    from localr1.engine.batch.scheduler import Scheduler

    engine = BatchEngine(load.path, load.params, load.sampling, parallel)
    scheduler = Scheduler(engine)

    def close() -> None:
        scheduler.close()
        engine.close()

    return scheduler, close


def _workers_note(load: dict[str, Any]) -> str:
    """Where the layers are, when RPC workers hold some."""
    workers = load.get("workers") or []
    if not workers:
        return ""
    held = int(sum(load["tensor_split"][: len(workers)]))
    return (f", {held} layers on workers {', '.join(workers)}: "
            "losing one ends the answers in flight, and the next request loads the model again")


def add_serve_parser(sub: Any, add_load: Any, add_sampling: Any) -> None:
    """The `serve` subcommand."""
    from localr1.commands.options import integer, size_bytes

    serve = sub.add_parser("serve", help="serve the model over an OpenAI-compatible HTTP API")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1; any other needs an API key)")
    serve.add_argument("--port", type=integer(0, 65535, "a port number from 0 (any free one) to 65535"),
                       default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    keys = serve.add_mutually_exclusive_group()
    keys.add_argument("--api-key", help="clients must send 'Authorization: Bearer KEY' (visible to other users "
                                        "in the process list: prefer --api-key-file)")
    keys.add_argument("--api-key-file", type=Path, help="read the key from the first line of this file")
    serve.add_argument("--parallel", "-p", type=integer(1, 256, "a whole number of sequences from 1 to 256"),
                       default=4, help="requests decoded together (default: 4); --ctx is per request")
    serve.add_argument("--max-body", type=size_bytes, default=4_000_000,
                       help="largest request body, e.g. 4M (default: 4M)")
    add_load(serve)
    add_sampling(serve)
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    # SIGTERM is the command line's terminate_as_interrupt: during the load, and after uvicorn's own stop, which
    # raises the signal again once the server has stopped (the default action killed the process unfreed)
    return serve_command(args)
