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
    add_workers_option,
    db_file,
)
from localr1.errors import LocalR1Error
from localr1.interrupts import Terminated, terminate_as_interrupt
from localr1.oserrors import file_system_error
from localr1.plaintext import printable

KV_TYPES = ("f16", "q8_0", "q4_0", "f32", "bf16")


def _add_load_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("loading (the planner chooses what is not given: localr1 plan MODEL explains)")
    group.add_argument(
        "--model", "-m", default="demo",
        help="a model key (models.toml or installed by 'localr1 quantize') or a .gguf path (default: demo)"
    )
    group.add_argument("--quant", metavar="TYPE", help="use this installed variant (e.g. Q4_K_M; default: auto)")
    group.add_argument("--ctx", type=CONTEXT, help="context size in tokens (default: auto)")
    group.add_argument("--threads", type=THREADS, default=0, help="CPU threads (default: physical cores)")
    group.add_argument("--gpu-layers", type=GPU_LAYERS, help="layers offloaded to the GPU, -1 for all (default: auto)")
    group.add_argument("--kv-type", choices=KV_TYPES, help="KV cache type (default: auto, f16 unless q8_0 fits more)")
    group.add_argument("--flash-attn", action=argparse.BooleanOptionalAction, default=None,
                       help="flash attention on or off (default: auto; q8_0/q4_0 KV need it)")
    group.add_argument("--no-mmap", action="store_true", help="read the model into memory instead of mapping it")
    add_workers_option(group)
    group.add_argument("--mlock", action="store_true",
                       help="lock the weights in RAM (needs a memlock limit of the model's size: ulimit -l)")


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sampling (defaults from models.toml)")
    group.add_argument("--temperature", "-t", type=TEMPERATURE, help="0 means greedy")
    group.add_argument("--top-p", type=TOP_P, help="above 0, at most 1")
    group.add_argument("--top-k", type=TOP_K, help="0 means off")
    group.add_argument("--max-tokens", "-n", type=MAX_TOKENS, help="at most this many tokens, at least 1")
    group.add_argument("--seed", type=SEED, help=f"0 to {UINT32_MAX}")


def _add_reasoning_options(parser: argparse.ArgumentParser) -> None:
    from localr1.commands.options import THINK_BUDGET
    from localr1.presets import preset_names

    group = parser.add_argument_group("reasoning")
    group.add_argument("--think-budget", type=THINK_BUDGET, metavar="N|Ns",
                       help="end the thinking after N tokens (2000) or seconds (90s); 0 answers directly")
    group.add_argument("--loop-guard", choices=("off", "warn", "act"), default="act",
                       help="on a repetition loop: end the thinking or stop the answer (act, default), "
                            "only say so (warn), or nothing (off)")
    group.add_argument("--preset", choices=preset_names(), default="plain",
                       help="instructions folded into the prompt: math asks for a \\boxed{} answer (default: plain)")


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = OneLineParser(prog="localr1", description="Local, offline R1-style reasoning.")
    parser.add_argument("--version", action="version", version=f"localr1 {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = sub.add_parser("chat", help="open the chat app (the default model comes from your settings)")
    chat.add_argument("--model", "-m", help="a model key (the planner picks the variant) or a .gguf path")
    chat.add_argument("--ctx", type=CONTEXT, help="context size in tokens (default: your settings, else auto)")
    chat.add_argument("--mlock", action="store_true", help="lock the weights in RAM for this session")
    chat.add_argument("--db", type=db_file, metavar="PATH",
                      help="the conversation database file (default: conversations.db in the data folder)")
    add_workers_option(chat)
    chat.set_defaults(handler=_chat)

    run = sub.add_parser("run", help="answer one prompt and exit")
    run.add_argument("prompt", help="the prompt, or - to read it from standard input")
    run.add_argument("--system", help="instructions (folded into the prompt for R1 models)")
    run.add_argument("--hide-thinking", action="store_true", help="do not print the model's reasoning")
    run.add_argument("--json", action="store_true", help="print one JSON object with thinking, answer and stats")
    run.add_argument("--stats", action="store_true", help="print timing stats to stderr at the end")
    _add_reasoning_options(run)
    _add_load_options(run)
    _add_sampling_options(run)
    run.set_defaults(handler=_run)

    info = sub.add_parser("info", help="describe a GGUF model file")
    info.add_argument("model", help="a .gguf path or a model name")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=_info)

    from localr1.commands.batch import add_batch_parser
    from localr1.commands.convert import add_convert_parsers
    from localr1.commands.models import add_models_parser
    from localr1.commands.plan import add_plan_parser
    from localr1.commands.pull import add_pull_parser
    from localr1.commands.quantize import add_quantize_parsers
    from localr1.commands.rm import add_rm_parser
    from localr1.commands.serve import add_serve_parser
    from localr1.commands.worker import add_worker_parser

    add_models_parser(sub)
    add_convert_parsers(sub)
    add_worker_parser(sub)
    add_quantize_parsers(sub)
    add_plan_parser(sub)
    add_batch_parser(sub, _add_load_options, _add_sampling_options)
    add_serve_parser(sub, _add_load_options, _add_sampling_options)
    add_pull_parser(sub)
    add_rm_parser(sub)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `localr1` console script."""
    try:  # building the parser imports every command: a second or more on a busy machine
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        return _interrupted()
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        if args.command == "chat":  # the app has a terminal to give back: its own handling
            return handler(args)
        with terminate_as_interrupt():  # SIGTERM (`timeout`, a service manager) stops as Ctrl-C does: exit 143
            return handler(args)
    except LocalR1Error as exc:
        return _report(exc, exc.exit_code, args.debug)
    except KeyboardInterrupt as exc:
        return _interrupted(terminated=isinstance(exc, Terminated))
    except BrokenPipeError:
        # The reader of our output went away (`localr1 run ... | head`): nothing left to say to anyone.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # the last resort: a file error no command put in words
        return _report(file_system_error(exc), 1, args.debug)


def _interrupted(*, terminated: bool = False) -> int:
    """Exit as a shell reports a command stopped by SIGINT (130) or SIGTERM (143)."""
    print(f"localr1: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
    return 143 if terminated else 130


def _report(exc: Exception, code: int, debug: bool) -> int:
    """One line on stderr (the traceback too with --debug); returns the exit code."""
    if debug:
        traceback.print_exc()
    print(f"localr1: error: {printable(' '.join(str(exc).split()))}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
