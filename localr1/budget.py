"""Thinking budgets and loop-guard modes as the user types them: shared by settings, CLI and engine."""

from __future__ import annotations

import re
from typing import Literal

from localr1.errors import ConfigError

LoopMode = Literal["off", "warn", "act"]
LOOP_MODES: tuple[LoopMode, ...] = ("off", "warn", "act")

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds|m|min|mins|minutes)?\s*$", re.IGNORECASE)


def parse_budget(text: str) -> tuple[int | None, float | None]:
    """'2000' -> (2000, None); '90s' / '1.5m' -> (None, seconds); 'none' or 'off' -> (None, None)."""
    if text.strip().lower() in ("", "none", "off", "unlimited"):
        return None, None
    match = _BUDGET.match(text)
    if match is None:
        raise ConfigError(f"a thinking budget must be tokens (2000) or time (90s, 2m), not {text!r}")
    value, unit = float(match.group(1)), (match.group(2) or "").lower()
    if not unit:
        if value != int(value):
            raise ConfigError(f"a thinking budget in tokens must be a whole number, not {text!r}")
        return int(value), None
    return None, value * 60 if unit.startswith("m") else value


def format_budget(tokens: int | None, seconds: float | None) -> str:
    """The inverse of parse_budget: '2000', '90s' or '' for unlimited."""
    if tokens is not None:
        return str(tokens)
    if seconds is not None:
        return f"{seconds:g}s"
    return ""


def check_loop_mode(mode: str) -> LoopMode:
    """The mode, or a ConfigError listing the known ones."""
    if mode not in LOOP_MODES:
        raise ConfigError(f"unknown loop guard mode '{mode}' (choose from {', '.join(LOOP_MODES)})")
    return mode
