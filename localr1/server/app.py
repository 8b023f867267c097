"""The Starlette app: `/v1/chat/completions` (streamed or not), `/v1/models`, `/health`; keys, limits, errors.

Each request becomes one sequence of the batch scheduler; its events come back through an asyncio queue.
A client that goes away (mid-stream or while waiting for a whole answer) has its sequence cancelled,
which frees the slot at the next decode step.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from localr1.engine.events import AnswerDelta, Event, Finished, ThinkingDelta
from localr1.errors import LocalR1Error, ModelLoadError, WorkerError
from localr1.server.protocol import ChatRequest, ChunkWriter, RequestError, completion, parse_chat_request
from localr1.server.stop import StopMatcher, cut_answer

if TYPE_CHECKING:
    from localr1.engine.batch.service import BatchService

DEFAULT_MAX_BODY = 4 * 1024 * 1024
DISCONNECT_POLL_S = 0.25


@dataclass(frozen=True)
class ServerConfig:
    """What the app serves and how it guards itself."""

    model_id: str
    api_key: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY


def error_response(error: RequestError) -> JSONResponse:
    """OpenAI's error shape, with the right status."""
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(error.payload(), status_code=error.status, headers=headers)


class ApiKeyMiddleware:
    """Every HTTP request must carry `Authorization: Bearer KEY`, compared in constant time."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self._key = key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = b""
            for name, value in scope.get("headers", []):
                if name == b"authorization":
                    given = value
            scheme, _, token = given.partition(b" ")
            if not (scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._key)):
                problem = "wrong API key" if given else "missing API key"
                response = error_response(RequestError(
                    f"{problem}: send it as 'Authorization: Bearer KEY'", 401, "invalid_api_key"))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON; over `limit` bytes is a 413, not JSON a 400."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"the request body is {declared} bytes; this server takes at most {limit}", 413,
                           "request_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"the request body is over {limit} bytes, the most this server takes", 413,
                               "request_too_large")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise RequestError(f"the request body is not valid JSON{where}", 400, "invalid_json") from None
    except RecursionError:  # thousands of nested brackets: Python's parser gives up
        raise RequestError("the request body nests arrays or objects too deeply", 400, "invalid_json") from None


class ChatEndpoint:
    """Turns chat requests into batch sequences and their events into OpenAI responses."""

    def __init__(self, scheduler: BatchService, config: ServerConfig) -> None:
        self.scheduler = scheduler
        self.config = config

    async def models(self, _request: Request) -> Response:
        """The one model this server runs."""
        return JSONResponse({"object": "list", "data": [
            {"id": self.config.model_id, "object": "model", "created": int(time.time()), "owned_by": "localr1"}]})

    async def health(self, _request: Request) -> Response:
        """Slots and load, for monitoring (and for tests that check requests shared the batch); 503 while the
        model's process is stopped (a lost worker), so a monitor sees it."""
        health = {"status": "ok", "model": self.config.model_id, **await asyncio.to_thread(self.scheduler.health)}
        return JSONResponse(health, status_code=200 if health["status"] == "ok" else 503)

    async def chat(self, request: Request) -> Response:
        """POST /v1/chat/completions."""
        try:
            body = await read_json(request, self.config.max_body_bytes)
            chat = parse_chat_request(body, self.scheduler.sampling)
            prepared = await asyncio.to_thread(self.scheduler.prepare, chat.messages)
        except RequestError as exc:
            return error_response(exc)
        except ClientDisconnect:
            return Response(status_code=400)
        except (WorkerError, ModelLoadError) as exc:  # reloading a model split across workers failed: the server
            code = "worker_unavailable" if isinstance(exc, WorkerError) else "model_unavailable"  # stays up
            return error_response(RequestError(exc.message, 503, code))
        except LocalR1Error as exc:  # a prompt over the context, a template that refuses the conversation
            code = "context_length_exceeded" if "context" in exc.message else "invalid_request_error"
            return error_response(RequestError(exc.message, 400, code, "messages"))
        from localr1.engine.batch.sequence import SequenceRequest

        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        controls = chat.reasoning
        events: asyncio.Queue[Event] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def sink(event: Event) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: the server is shutting down
                loop.call_soon_threadsafe(events.put_nowait, event)

        self.scheduler.submit(SequenceRequest(request_id, prepared, chat.sampling, controls), sink)
        if chat.stream:
            return StreamingResponse(self._stream(request_id, chat, events), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return await self._whole(request, request_id, chat, events)

    async def _whole(self, request: Request, request_id: str, chat: ChatRequest,
                     events: asyncio.Queue[Event]) -> Response:
        finished = False
        matcher = StopMatcher(chat.stop)
        try:
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), DISCONNECT_POLL_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return Response(status_code=499)
                    continue
                if isinstance(event, AnswerDelta) and not matcher.stopped:
                    matcher.feed(event.text)
                    if matcher.stopped:  # the rest of the answer is not wanted: free the slot
                        self.scheduler.cancel(request_id)
                if isinstance(event, Finished):
                    finished = True
                    if event.error and not matcher.stopped:
                        return error_response(RequestError(event.error, 500, "generation_failed"))
                    answer, stopped = cut_answer(event.answer, chat.stop)
                    final = replace(event, answer=answer, error=None)
                    return JSONResponse(completion(request_id, self.config.model_id, final, stopped))
        finally:
            if not finished:
                self.scheduler.cancel(request_id)

    async def _stream(self, request_id: str, chat: ChatRequest, events: asyncio.Queue[Event]) -> AsyncIterator[str]:
        writer = ChunkWriter(request_id, self.config.model_id)
        matcher = StopMatcher(chat.stop)
        finished = False
        try:
            yield _sse(writer.opening())
            while True:
                event = await events.get()
                if isinstance(event, ThinkingDelta):
                    yield _sse(writer.reasoning(event.text))
                elif isinstance(event, AnswerDelta) and not matcher.stopped:
                    if text := matcher.feed(event.text):
                        yield _sse(writer.answer(text))
                    if matcher.stopped:  # the rest of the answer is not wanted: free the slot
                        self.scheduler.cancel(request_id)
                elif isinstance(event, Finished):
                    finished = True
                    if tail := matcher.flush():
                        yield _sse(writer.answer(tail))
                    if event.error and not matcher.stopped:
                        yield _sse(RequestError(event.error, 500, "generation_failed").payload())
                    else:
                        yield _sse(writer.closing(event, matcher.stopped))
                        if chat.include_usage:
                            yield _sse(writer.usage(event))
                    yield "data: [DONE]\n\n"
                    return
        finally:
            if not finished:  # the client went away: stop its sequence and free the slot
                self.scheduler.cancel(request_id)


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _not_found(request: Request, _exc: Exception) -> Response:
    return error_response(RequestError(f"no route {request.method} {request.url.path}; the API is under /v1", 404,
                                       "not_found"))


async def _method_not_allowed(request: Request, _exc: Exception) -> Response:
    return error_response(RequestError(f"{request.method} is not allowed on {request.url.path}", 405,
                                       "method_not_allowed"))


def create_app(scheduler: BatchService, config: ServerConfig) -> ASGIApp:
    """The ASGI app, behind the API-key check when a key is set."""
    endpoint = ChatEndpoint(scheduler, config)
    app = Starlette(routes=[
        Route("/v1/chat/completions", endpoint.chat, methods=["POST"]),
        Route("/v1/models", endpoint.models, methods=["GET"]),
        Route("/health", endpoint.health, methods=["GET"]),
    ], exception_handlers={404: _not_found, 405: _method_not_allowed})
    if config.api_key:
        return ApiKeyMiddleware(app, config.api_key)
    return app
