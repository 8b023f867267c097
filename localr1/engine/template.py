"""Chat formatting with the model's own Jinja template, plus the R1 distills' rules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from localr1.engine.reasoning import THINK_CLOSE, THINK_OPEN, prompt_opens_thinking
from localr1.errors import TemplateError

Role = Literal["system", "user", "assistant"]

# Used only when a GGUF carries no template at all.
FALLBACK_CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class ChatMessage:
    """One turn. `thinking` is kept for display and storage but never sent to the model."""

    role: Role
    content: str
    thinking: str = ""


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt ready to tokenize."""

    text: str
    starts_with_bos: bool
    opens_thinking: bool


def strip_thinking(content: str) -> str:
    """Remove reasoning from an assistant message: keep only what follows the last `</think>`."""
    if THINK_CLOSE in content:
        return content.rsplit(THINK_CLOSE, 1)[-1].lstrip()
    if content.lstrip().startswith(THINK_OPEN):
        return ""  # thinking that never closed holds no answer
    return content


def apply_r1_rules(messages: list[ChatMessage]) -> list[ChatMessage]:
    """No system prompt (folded into the first user turn); earlier thinking stripped."""
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content.strip())
    out: list[ChatMessage] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "user" and system and not any(m.role == "user" for m in out):
            out.append(ChatMessage("user", f"{system}\n\n{message.content}"))
        else:
            out.append(message)
    if system and not any(m.role == "user" for m in out):
        out.insert(0, ChatMessage("user", system))
    return out


def _raise_exception(message: str) -> None:
    raise TemplateError(f"the model's chat template refused the conversation: {message}")


def _tojson(value: Any, indent: int | None = None, **_: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


@lru_cache(maxsize=8)
def _compile(source: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(source)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"the model's chat template does not parse: {exc}") from None


def render(
    template: str | None,
    messages: list[ChatMessage],
    *,
    bos_token: str | None,
    eos_token: str | None,
    r1_rules: bool,
    add_generation_prompt: bool = True,
) -> RenderedPrompt:
    """Render a conversation to prompt text with the model's template in a Jinja sandbox."""
    turns = apply_r1_rules(messages) if r1_rules else list(messages)
    payload = [
        {"role": m.role, "content": strip_thinking(m.content) if m.role == "assistant" else m.content}
        for m in turns
    ]
    try:
        text = _compile(template or FALLBACK_CHATML).render(
            messages=payload,
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token or "",
            eos_token=eos_token or "",
        )
    except TemplateError:
        raise
    except jinja2.TemplateError as exc:
        raise TemplateError(f"the model's chat template failed to render: {exc}") from None
    return RenderedPrompt(
        text=text,
        starts_with_bos=bool(bos_token) and text.startswith(bos_token or ""),
        opens_thinking=prompt_opens_thinking(text),
    )
