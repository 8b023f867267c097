"""OpenAI chat-completions requests in, responses and stream chunks out, with the reasoning in `reasoning_content`.

Reasoning goes beside the answer the way DeepSeek's API does (`reasoning_content` in `message` and in each
streamed `delta`), duplicated as `reasoning` for clients that read that name. Reasoning sent back in a
request's history is dropped: only an assistant message's `content` reaches the model.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from typing import Any

from localr1.budget import parse_budget
from localr1.engine.events import Finished
from localr1.engine.params import SamplingParams
from localr1.engine.template import ChatMessage, Role
from localr1.engine.thinking import ThinkingControl
from localr1.errors import ConfigError
from localr1.server.stop import parse_stop

ROLE_MAP: dict[str, Role] = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
LOOP_GUARD_MODES = ("off", "warn", "act")
MAX_BUDGET_TOKENS = 10_000_000
MAX_BUDGET_S = 7 * 24 * 3600.0
FINISH_REASONS = {"eos": "stop", "length": "length", "repetition": "stop", "cancelled": "stop"}


class RequestError(Exception):
    """A request the server refuses; `status` is the HTTP status, `code` OpenAI's error code."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request_error",
                 param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.code, self.param = message, status, code, param

    def payload(self) -> dict[str, Any]:
        """OpenAI's error body."""
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat-completions request."""

    messages: list[ChatMessage]
    sampling: SamplingParams
    reasoning: ThinkingControl  # from the extension fields `thinking_budget` and `loop_guard`
    stream: bool
    include_usage: bool
    stop: tuple[str, ...] = ()  # cut the answer before the first of these


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise RequestError(f"'{name}' must be a number from {low:g} to {high:g}", param=name)
    return float(value)


def _whole(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(f"'{name}' must be a whole number from {low} to {high}", param=name)
    return value


def _content(value: Any, index: int) -> str:
    """Message content: a string, or a list of text parts."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list):
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise RequestError(f"messages[{index}].content: only text parts are supported", param="messages")
            texts.append(part["text"])
        return "".join(texts)
    raise RequestError(f"messages[{index}].content must be a string or a list of text parts", param="messages")


def parse_messages(raw: Any) -> list[ChatMessage]:
    """The conversation; an assistant's `reasoning_content` / `reasoning` is never read."""
    if not isinstance(raw, list) or not raw:
        raise RequestError("'messages' must be a non-empty list", param="messages")
    out: list[ChatMessage] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise RequestError(f"messages[{index}] must be an object", param="messages")
        role = ROLE_MAP.get(str(item.get("role")))
        if role is None:
            raise RequestError(f"messages[{index}].role {item.get('role')!r} is not supported "
                               "(use system, developer, user or assistant)", param="messages")
        if item.get("content") is None and role != "assistant":  # only an assistant's turn may be empty (tool calls)
            raise RequestError(f"messages[{index}].content is missing: a {role} message needs text", param="messages")
        out.append(ChatMessage(role, _content(item.get("content"), index)))
    if out[-1].role != "user":
        raise RequestError("the last message must be the user's", param="messages")
    return out


BUDGET_FORMS = "a whole number of tokens (2000) or a time string (\"90s\", \"2m\"); 0 answers directly"


def _budget(value: Any) -> tuple[int | None, float | None]:
    """`thinking_budget` as `run --think-budget` takes it: tokens, or a string of tokens or seconds."""
    if value is None:
        return None, None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BUDGET_TOKENS:
        return value, None
    if isinstance(value, str) and len(value) <= 32:
        try:
            tokens, seconds = parse_budget(value)
        except ConfigError:
            pass
        else:
            if (tokens is None or tokens <= MAX_BUDGET_TOKENS) and (seconds is None or seconds <= MAX_BUDGET_S):
                return tokens, seconds
    shown = json.dumps(value, ensure_ascii=False)
    shown = shown if len(shown) <= 40 else shown[:36] + "…"
    raise RequestError(f"'thinking_budget' must be {BUDGET_FORMS}, not {shown}", param="thinking_budget")


def reasoning_fields(body: dict[str, Any]) -> ThinkingControl:
    """The adapter from request fields to reasoning controls: `thinking_budget` (tokens or "90s") and `loop_guard`."""
    tokens, seconds = _budget(body.get("thinking_budget"))
    guard = body.get("loop_guard", "act")
    if guard not in LOOP_GUARD_MODES:
        raise RequestError("'loop_guard' must be one of off, warn, act", param="loop_guard")
    return ThinkingControl(budget_tokens=tokens, budget_seconds=seconds, loop_guard=guard)


def parse_chat_request(body: Any, defaults: SamplingParams) -> ChatRequest:
    """Validate a chat-completions body against what this server supports."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    messages = parse_messages(body.get("messages"))
    _whole(body, "n", 1, 1)  # one choice per request
    stop = parse_stop(body.get("stop"))
    if isinstance(stop, str):
        raise RequestError(stop, param="stop")
    if body.get("tools"):
        raise RequestError("tools are not supported by this server", param="tools")
    max_tokens = _whole(body, "max_completion_tokens", 1, 2**31 - 1) or _whole(body, "max_tokens", 1, 2**31 - 1)
    temperature = _number(body, "temperature", 0.0, 2.0)
    top_p = _number(body, "top_p", 0.0, 1.0)
    if top_p == 0.0:
        raise RequestError("'top_p' must be above 0", param="top_p")
    top_k = _whole(body, "top_k", 0, 1_000_000)
    seed = _whole(body, "seed", 0, 2**32 - 1)
    overrides: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
                                 "top_k": top_k, "seed": seed}
    sampling = replace(defaults, **{k: v for k, v in overrides.items() if v is not None})
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError("'stream' must be true or false", param="stream")
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict) or type(options.get("include_usage", False)) is not bool):
        raise RequestError("'stream_options' must be an object like {\"include_usage\": true}", param="stream_options")
    include_usage = bool(options and options.get("include_usage"))
    return ChatRequest(messages, sampling, reasoning_fields(body), stream, include_usage, stop)


def usage(final: Finished) -> dict[str, int]:
    """OpenAI's token counts."""
    prompt, completion = final.stats.prompt_tokens, final.stats.generated_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def finish_reason(final: Finished, stopped: bool) -> str:
    """OpenAI's finish reason; a stop string matched is "stop" whatever ended the sequence after it."""
    return "stop" if stopped else FINISH_REASONS.get(final.stats.stop_reason, "stop")


def extras(final: Finished, stopped: bool = False) -> dict[str, Any]:
    """What localr1 adds about the generation (stop reason, loop guard, batching)."""
    return {
        "stop_reason": "stop_sequence" if stopped else final.stats.stop_reason,
        "loop_detected_at": getattr(final, "loop_detected_at", None),
        "thinking_forced_closed": getattr(final, "thinking_forced_closed", False),
        "peak_batch": getattr(final, "peak_batch", 1),
    }


def completion(request_id: str, model: str, final: Finished, stopped: bool = False) -> dict[str, Any]:
    """A whole chat.completion object: reasoning first, then the answer (already cut at a stop string)."""
    message = {"role": "assistant", "reasoning_content": final.thinking, "reasoning": final.thinking,
               "content": final.answer}
    return {
        "id": request_id, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason(final, stopped)}],
        "usage": usage(final),
        "localr1": extras(final, stopped),
    }


class ChunkWriter:
    """Stream chunks of one response (`chat.completion.chunk`) as server-sent event lines."""

    def __init__(self, request_id: str, model: str) -> None:
        self.request_id, self.model = request_id, model
        self.created = int(time.time())

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **more: Any) -> dict[str, Any]:
        return {"id": self.request_id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                  "finish_reason": finish}], **more}

    def opening(self) -> dict[str, Any]:
        """The first chunk: the role, nothing said yet."""
        return self._chunk({"role": "assistant", "content": ""})

    def reasoning(self, text: str) -> dict[str, Any]:
        """A piece of reasoning."""
        return self._chunk({"reasoning_content": text, "reasoning": text, "content": None})

    def answer(self, text: str) -> dict[str, Any]:
        """A piece of the answer."""
        return self._chunk({"content": text})

    def closing(self, final: Finished, stopped: bool = False) -> dict[str, Any]:
        """The last choice chunk, with the finish reason and localr1's extras."""
        return self._chunk({}, finish_reason(final, stopped), localr1=extras(final, stopped))

    def usage(self, final: Finished) -> dict[str, Any]:
        """The usage chunk (stream_options.include_usage): no choices."""
        return {"id": self.request_id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage(final)}
