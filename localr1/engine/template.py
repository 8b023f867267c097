"""Chat formatting with the model's own Jinja template, plus the R1 distills' rules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

import jinja2

from localr1.engine.reasoning import THINK_CLOSE, THINK_OPEN, prompt_opens_thinking
from localr1.engine.sandbox import DEFAULT_MAX_CHARS, BoundedSandbox, RenderLimits, render_bounded
from localr1.errors import TemplateError

Role = Literal["system", "user", "assistant"]
R1_OPENER = THINK_OPEN + "\n"

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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@lru_cache(maxsize=8)
def compile_template(source: str) -> jinja2.Template:
    """Compile a chat template in the bounded sandbox; a template that does not parse is a TemplateError."""
    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.add_filter("tojson", _tojson)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        compiled: jinja2.Template = env.compile_guarded(source)
        return compiled
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"the model's chat template does not parse (line {exc.lineno}: {_one_line(exc)}); "
            "use a model file with a working template"
        ) from None
    except Exception as exc:  # anything else from compiling text read out of a model file
        raise TemplateError(
            f"the model's chat template does not compile ({type(exc).__name__}: {_one_line(exc)}); "
            "use a model file with a working template"
        ) from None


def render(
    template: str | None,
    messages: list[ChatMessage],
    *,
    bos_token: str | None,
    eos_token: str | None,
    r1_rules: bool,
    add_generation_prompt: bool = True,
    limits: RenderLimits | None = None,
) -> RenderedPrompt:
    """Render a conversation with the model's template in a bounded sandbox (R1 rules for R1 models)."""
    turns = apply_r1_rules(messages) if r1_rules else list(messages)
    payload = [
        {"role": m.role, "content": strip_thinking(m.content) if m.role == "assistant" else m.content}
        for m in turns
    ]
    compiled = compile_template(template or FALLBACK_CHATML)
    if limits is None:
        limits = RenderLimits(max_chars=DEFAULT_MAX_CHARS + 2 * sum(len(m["content"]) for m in payload))
    variables = {
        "messages": payload,
        "add_generation_prompt": add_generation_prompt,
        "bos_token": bos_token or "",
        "eos_token": eos_token or "",
    }
    try:
        text = render_bounded(compiled, limits, variables)
    except TemplateError:
        raise
    except Exception as exc:  # the template is code from the model file: any failure is the file's
        raise TemplateError(
            f"the model's chat template failed to render ({type(exc).__name__}: {_one_line(exc)}); "
            "use a model file with a working template"
        ) from None
    if r1_rules and add_generation_prompt and not prompt_opens_thinking(text):
        # The older R1 template, in many published GGUFs, ends at <｜Assistant｜>: DeepSeek asks
        # that every reply start inside <think>.
        text += R1_OPENER
    return RenderedPrompt(
        text=text,
        starts_with_bos=bool(bos_token) and text.startswith(bos_token or ""),
        opens_thinking=prompt_opens_thinking(text),
    )
