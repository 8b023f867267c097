"""Command line: argument parsing and error reporting; each command calls one function."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from localr1 import __version__
from localr1.commands.options import (
    CONTEXT,
    GPU_LAYERS,
    MAX_TOKENS,
    SEED,
    TEMPERATURE,
    THREADS,
    TOP_K,
    TOP_P,
    UINT32_MAX,
    OneLineParser,
)
from localr1.errors import LocalR1Error
from localr1.oserrors import file_system_error

KV_TYPES = ("f16", "q8_0", "q4_0", "f32", "bf16")


def _add_load_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("loading")
    group.add_argument(
        "--model", "-m", default="demo", help="model name from models.toml or a .gguf path (default: demo)"
    )
    group.add_argument("--ctx", type=CONTEXT, default=4096, help="context size in tokens (default: 4096)")
    group.add_argument("--threads", type=THREADS, default=0, help="CPU threads (default: physical cores)")
    group.add_argument("--gpu-layers", type=GPU_LAYERS, default=0,
                       help="layers offloaded to the GPU, -1 for all (default: 0)")
    group.add_argument("--kv-type", choices=KV_TYPES, default="f16", help="KV cache type (default: f16)")
    group.add_argument("--flash-attn", action="store_true", help="use flash attention (needed for q8_0/q4_0 KV)")
    group.add_argument("--no-mmap", action="store_true", help="read the model into memory instead of mapping it")


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sampling (defaults from models.toml)")
    group.add_argument("--temperature", "-t", type=TEMPERATURE, help="0 means greedy")
    group.add_argument("--top-p", type=TOP_P, help="above 0, at most 1")
    group.add_argument("--top-k", type=TOP_K, help="0 means off")
    group.add_argument("--max-tokens", "-n", type=MAX_TOKENS, help="at most this many tokens, at least 1")
    group.add_argument("--seed", type=SEED, help=f"0 to {UINT32_MAX}")


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = OneLineParser(prog="localr1", description="Local, offline R1-style reasoning.")
    parser.add_argument("--version", action="version", version=f"localr1 {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = sub.add_parser("chat", help="open the chat app (the default model comes from your settings)")
    chat.add_argument("--model", "-m", help="model name from models.toml or a .gguf path")
    chat.add_argument("--ctx", type=CONTEXT, help="context size in tokens")
    chat.set_defaults(handler=_chat)

    run = sub.add_parser("run", help="answer one prompt and exit")
    run.add_argument("prompt", help="the prompt, or - to read it from standard input")
    run.add_argument("--system", help="instructions (folded into the prompt for R1 models)")
    run.add_argument("--hide-thinking", action="store_true", help="do not print the model's reasoning")
    run.add_argument("--json", action="store_true", help="print one JSON object with thinking, answer and stats")
    run.add_argument("--stats", action="store_true", help="print timing stats to stderr at the end")
    _add_load_options(run)
    _add_sampling_options(run)
    run.set_defaults(handler=_run)

    info = sub.add_parser("info", help="describe a GGUF model file")
    info.add_argument("model", help="a .gguf path or a model name")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=_info)

    models = sub.add_parser("models", help="list the model family and what is installed")
    models.set_defaults(handler=_models)

    from localr1.commands.batch import add_batch_parser
    from localr1.commands.convert import add_convert_parsers
    from localr1.commands.plan import add_plan_parser
    from localr1.commands.quantize import add_quantize_parsers
    from localr1.commands.serve import add_serve_parser

    add_convert_parsers(sub)
    add_quantize_parsers(sub)
    add_plan_parser(sub)
    add_batch_parser(sub, _add_load_options, _add_sampling_options)
    add_serve_parser(sub, _add_load_options, _add_sampling_options)
    return parser


def _chat(args: argparse.Namespace) -> int:
    from localr1.commands.chat import chat_command

    return chat_command(args)


def _run(args: argparse.Namespace) -> int:
    from localr1.commands.run import run_command

    return run_command(args)


def _info(args: argparse.Namespace) -> int:
    from localr1.commands.info import info_command

    return info_command(args.model, as_json=args.json)


def _models(args: argparse.Namespace) -> int:
    from localr1.commands.info import models_command

    return models_command()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `localr1` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except LocalR1Error as exc:
        return _report(exc, exc.exit_code, args.debug)
    except KeyboardInterrupt:
        print("localr1: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`localr1 run ... | head`): nothing left to say to anyone.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # the last resort: a file error no command put in words
        return _report(file_system_error(exc), 1, args.debug)


def _report(exc: Exception, code: int, debug: bool) -> int:
    """One line on stderr (the traceback too with --debug); returns the exit code."""
    if debug:
        traceback.print_exc()
    print(f"localr1: error: {' '.join(str(exc).split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
