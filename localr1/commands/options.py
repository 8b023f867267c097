"""Argument types that validate numeric options, and a parser whose errors are one line (exit code 2)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1
MIN_CONTEXT = 64  # the engine refuses smaller contexts
MIN_CHUNK = 16  # tokens per evaluation or calibration chunk


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors: `localr1 run: error: argument --max-tokens/-n: ...` and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print the error and a pointer to --help on one line, then exit 2."""
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def _fail(what: str, text: str) -> NoReturn:
    raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")


def db_file(text: str) -> Path:
    """An argparse type: a database file name that is not empty (Path('') would be the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; name a database file, or leave out --db for the default")
    return Path(text)


def integer(low: int, high: int = INT32_MAX, what: str | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high]; `what` describes it in the error."""
    described = what or (f"a whole number from {low} to {high}" if high != INT32_MAX
                         else f"a whole number of at least {low}")

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            _fail(described, text)
        if not low <= value <= high:
            _fail(described, text)
        return value

    parse.__name__ = "integer"
    return parse


def number(low: float, high: float = math.inf, *, low_open: bool = False, what: str | None = None
           ) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (or (low, high] with low_open)."""
    bound = f"above {low:g}" if low_open else f"at least {low:g}"
    described = what or (f"a number {bound} and at most {high:g}" if high != math.inf else f"a number {bound}")

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            _fail(described, text)
        too_low = value <= low if low_open else value < low
        if not math.isfinite(value) or too_low or value > high:
            _fail(described, text)
        return value

    parse.__name__ = "number"
    return parse


# The options the commands share, each with the range llama.cpp and localr1 accept.
CONTEXT = integer(MIN_CONTEXT, what=f"a whole number of tokens, at least {MIN_CONTEXT}")
THREADS = integer(0, 4096, what="a whole number from 0 (all physical cores) to 4096")
GPU_LAYERS = integer(-1, 10_000, what="a whole number of layers from 0 to 10000, or -1 for all")
MAX_TOKENS = integer(1, what="a whole number of tokens, at least 1")
TEMPERATURE = number(0.0, 100.0, what="a number from 0 (greedy) to 100")
TOP_P = number(0.0, 1.0, low_open=True, what="a number above 0 and at most 1")
TOP_K = integer(0, what="a whole number, 0 (off) or more")
SEED = integer(0, UINT32_MAX, what=f"a whole number from 0 to {UINT32_MAX}")
CHUNK = integer(MIN_CHUNK, 1_048_576, what=f"a whole number of tokens from {MIN_CHUNK} to 1048576")
EVAL_TOP_K = integer(1, 1_000_000, what="a whole number from 1 to 1000000")
COUNT = integer(0, what="a whole number, 0 or more")
TOKENS = integer(1, what="a whole number of tokens, at least 1")


def size_bytes(text: str) -> int:
    """An argparse type for sizes such as 2G, 500M or 4096 (bytes, decimal units)."""
    from quantize.sizes import SizeError, parse_size

    try:
        return parse_size(text)
    except SizeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None



def workers_list(text: str) -> tuple[str, ...]:
    """An argparse type: `host:port,host:port` (each checked), as endpoint strings."""
    from localr1.errors import ConfigError
    from localr1.workers import parse_workers

    try:
        return tuple(str(e) for e in parse_workers(text))
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def think_budget(text: str) -> tuple[int | None, float | None]:
    """An argparse type for --think-budget: tokens (2000) or time (90s, 2m)."""
    from localr1.budget import parse_budget
    from localr1.errors import ConfigError

    try:
        return parse_budget(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_workers_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--workers host:port,...`, the same for run, chat, plan, batch and serve."""
    parser.add_argument("--workers", type=workers_list, default=None, metavar="HOST:PORT,...",
                        help="RPC workers started with 'localr1 worker' that hold some of the layers "
                             "(only on a trusted network: the protocol has no authentication)")


THINK_BUDGET = think_budget
