"""Prompt presets after DeepSeek's usage notes for R1, folded into the user turn (R1 takes no system prompt)."""

from __future__ import annotations

from typing import Literal

from localr1.errors import ConfigError

Preset = Literal["plain", "math", "code"]
PRESETS: dict[str, str] = {
    "plain": "",
    "math": "Please reason step by step, and put your final answer within \\boxed{}.",
    "code": "Please reason step by step about the approach first, then give the complete code in one fenced "
            "block, followed by a short explanation.",
}
BOXED = "\\boxed{"


def preset_names() -> tuple[str, ...]:
    """The presets, plain first."""
    return tuple(PRESETS)


def check_preset(name: str) -> Preset:
    """The preset's name, or a ConfigError listing the known ones."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}' (choose from {', '.join(PRESETS)})")
    return name  # type: ignore[return-value]


def apply_preset(prompt: str, preset: str) -> str:
    """The user's text with the preset's instruction after it (DeepSeek puts it in the prompt)."""
    instruction = PRESETS[check_preset(preset)]
    return f"{prompt.rstrip()}\n\n{instruction}" if instruction else prompt


def last_boxed(answer: str) -> str | None:
    """The content of the last `\\boxed{...}` in an answer (nested braces kept), or None."""
    start = answer.rfind(BOXED)
    while start >= 0:
        depth, index = 1, start + len(BOXED)
        while index < len(answer) and depth:
            depth += {"{": 1, "}": -1}.get(answer[index], 0)
            index += 1
        if depth == 0:
            return answer[start + len(BOXED): index - 1].strip()
        start = answer.rfind(BOXED, 0, start)  # an unclosed last one: take the one before
    return None
