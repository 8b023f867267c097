"""Chat templates rendered the way transformers renders them (Jinja sandbox, trim/lstrip blocks)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from quantize.convert.config import read_json_object
from quantize.convert.tokenizer import chat_template_of, token_text
from quantize.errors import VerificationError


def _raise(message: str) -> None:
    raise VerificationError(f"the chat template refused the conversation: {message}")


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda value, indent=None, **_: json.dumps(value, ensure_ascii=False, indent=indent)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def render_chat(template: str | None, bos_token: str, eos_token: str, messages: list[dict[str, Any]],
                add_generation_prompt: bool = True) -> str:
    """Render messages with a chat template."""
    if template is None:
        raise VerificationError("no chat template to render")
    try:
        return _environment().from_string(template).render(
            messages=messages, bos_token=bos_token, eos_token=eos_token, add_generation_prompt=add_generation_prompt
        )
    except jinja2.TemplateError as exc:
        raise VerificationError(f"the chat template failed to render: {exc}") from None


def template_inputs(checkpoint_dir: Path) -> tuple[str | None, str, str]:
    """The checkpoint's chat template with its BOS and EOS token texts."""
    path = checkpoint_dir / "tokenizer_config.json"
    config = read_json_object(path) if path.exists() else {}
    bos, eos = token_text(config.get("bos_token")), token_text(config.get("eos_token"))
    return chat_template_of(checkpoint_dir, config), bos or "", eos or ""


def sample_conversation() -> list[dict[str, Any]]:
    """A multi-turn conversation: system prompt, two user turns, an answer that carried its thinking."""
    return [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": "What is 17 * 23? Answer briefly."},
        {"role": "assistant", "content": "<think>\n17 * 23 = 17 * 20 + 17 * 3 = 391.\n</think>391."},
        {"role": "user", "content": "And in code? 写一个函数 🤖"},
    ]
