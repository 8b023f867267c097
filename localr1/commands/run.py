"""`localr1 run`: answer one prompt, streaming the answer to stdout."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, TextIO

from localr1.engine import (
    AnswerDelta,
    ChatMessage,
    ContextTrimmed,
    Event,
    Finished,
    GenerationStats,
    LoadRequest,
    SlowDecoding,
    ThinkingDelta,
)
from localr1.errors import ConfigError
from localr1.loader import open_engine
from localr1.residency import lock_status_from, slow_decoding_notice
from localr1.streaming import ThreadedStream

if TYPE_CHECKING:
    from localr1.engine.port import ChatEngine

DIM, RESET = "\x1b[2m", "\x1b[0m"


def read_prompt(prompt: str, stdin: TextIO) -> str:
    """The prompt argument, or standard input for `-`; empty or not UTF-8 is an error."""
    try:  # invalid bytes fail to decode, or arrive as lone surrogates (surrogateescape) no tokenizer takes
        text = stdin.read() if prompt == "-" else prompt
        text.encode("utf-8")
    except UnicodeError as exc:
        where = "standard input" if prompt == "-" else "the prompt"
        raise ConfigError(f"{where} is not UTF-8 text (an invalid byte at position {getattr(exc, 'start', 0)}); "
                          "convert it to UTF-8 first, e.g. with iconv -t UTF-8") from None
    if not text.strip():
        raise ConfigError("the prompt is empty: pass some text, or - with text on standard input")
    return text


def load_request_from(args: argparse.Namespace) -> LoadRequest:
    """The user's loading choices (None: the planner's) from the shared loading options."""
    return LoadRequest(
        quant=args.quant,
        context_size=args.ctx,
        threads=args.threads,
        gpu_layers=args.gpu_layers,
        kv_cache_type=args.kv_type,
        flash_attention=args.flash_attn,
        use_mmap=not args.no_mmap,
        use_mlock=args.mlock,
        workers=tuple(getattr(args, "workers", None) or ()),
    )


class TerminalPrinter:
    """Answer to stdout as it arrives; thinking to stderr, dimmed on a terminal."""

    def __init__(self, show_thinking: bool, out: TextIO, err: TextIO, plan: dict[str, object] | None = None) -> None:
        self.show_thinking = show_thinking
        self.plan = plan
        self.out, self.err = out, err
        self._dim = err.isatty()
        self._in_thinking = False

    def _end_thinking(self) -> None:
        if self._in_thinking:
            self.err.write((RESET if self._dim else "") + "\n")
            self.err.flush()
            self._in_thinking = False

    def handle(self, event: Event) -> None:
        """Print one event."""
        if isinstance(event, ThinkingDelta) and self.show_thinking:
            if not self._in_thinking:
                self.err.write(DIM if self._dim else "")
                self._in_thinking = True
            self.err.write(event.text)
            self.err.flush()
        elif isinstance(event, AnswerDelta):
            self._end_thinking()
            self.out.write(event.text)
            self.out.flush()
        elif isinstance(event, ContextTrimmed):
            self.err.write(f"[left out the {event.dropped_messages} oldest messages to fit the context]\n")
        elif isinstance(event, SlowDecoding):
            notice = slow_decoding_notice(event.measured_tps, event.predicted_tps, lock_status_from(self.plan))
            if self._in_thinking:  # a line of its own, undimmed, and the thinking goes on dimmed after it
                self.err.write(f"{RESET if self._dim else ''}\nlocalr1: {notice}\n{DIM if self._dim else ''}")
            else:
                self.err.write(f"localr1: {notice}\n")
            self.err.flush()
        elif isinstance(event, Finished):
            self._end_thinking()
            self.out.write("\n")
            self.out.flush()


def _stop(engine: ChatEngine, stream: ThreadedStream[Event]) -> None:
    """Cancel the answer, wait for the generating thread to end, and free the model (exiting while llama.cpp
    still runs in that thread crashes the process)."""
    engine.cancel()
    with contextlib.suppress(Exception):
        while stream.next() is not None:
            pass
    engine.close()


def cut_off_notice(stats: GenerationStats, max_tokens: int, context_size: int) -> str | None:
    """One line saying that a token limit ended the reply, and what to raise; None when it ended by itself."""
    if not stats.truncated:
        return None
    if stats.length_limit == "context":
        if stats.thinking_cut_off:
            return (f"the model was still thinking when the context ({context_size} tokens) filled up, "
                    "no answer: raise --ctx")
        return f"answer cut off: the context ({context_size} tokens) is full (--ctx)"
    if stats.thinking_cut_off:
        return (f"the model was still thinking when it reached the {max_tokens}-token limit, "
                "no answer: raise --max-tokens")
    return f"answer cut off at the {max_tokens}-token limit (--max-tokens)"


def run_command(args: argparse.Namespace) -> int:
    """Load the model, stream the reply, and return the exit code (130 when interrupted)."""
    prompt = read_prompt(args.prompt, sys.stdin)
    overrides = {
        "temperature": args.temperature,
        "top_p": args.top_p,
        "top_k": args.top_k,
        "max_tokens": args.max_tokens,
        "seed": args.seed,
    }
    notices: list[str] = []

    def notify(text: str) -> None:
        notices.append(text)
        if not args.json:
            print(f"localr1: {text}", file=sys.stderr, flush=True)

    engine = open_engine(args.model, load_request_from(args), overrides, notify=notify)
    facts = engine.describe()
    plan = facts.get("plan")
    if not args.json and isinstance(plan, dict):
        print(f"localr1: plan: {plan['summary']}", file=sys.stderr, flush=True)
    messages = [ChatMessage("system", args.system)] if args.system else []
    messages.append(ChatMessage("user", prompt))
    printer = None if args.json else TerminalPrinter(not args.hide_thinking, sys.stdout, sys.stderr,
                                                     plan if isinstance(plan, dict) else None)
    slow: SlowDecoding | None = None
    finished: Finished | None = None
    trimmed = 0
    interrupted = False
    stream = ThreadedStream(lambda: engine.chat(messages))
    while True:
        try:
            event = stream.next()
        except KeyboardInterrupt:
            if interrupted:
                raise
            interrupted = True
            engine.cancel()  # the stream goes on to its Finished event
            continue
        if event is None:
            break
        if printer is not None:
            try:
                printer.handle(event)
            except OSError:  # our output is gone (a closed pipe, a full disk): stop the worker before saying so
                _stop(engine, stream)
                raise
        if isinstance(event, ContextTrimmed):
            trimmed = event.dropped_messages
        if isinstance(event, SlowDecoding):
            slow = event
        if isinstance(event, Finished):
            finished = event
    assert finished is not None
    notice = cut_off_notice(finished.stats, engine.sampling.max_tokens, engine.context_size)
    if args.json:
        lock = lock_status_from(plan if isinstance(plan, dict) else None)
        print(json.dumps({
            **facts,
            "notices": notices,
            "slow_decoding": None if slow is None else {
                "measured_tps": slow.measured_tps, "predicted_tps": slow.predicted_tps,
                "notice": slow_decoding_notice(slow.measured_tps, slow.predicted_tps, lock)},
            "thinking": finished.thinking,
            "answer": finished.answer,
            "stop_reason": finished.stats.stop_reason,
            "truncated": finished.stats.truncated,
            "notice": notice,
            "stats": asdict(finished.stats),
            "sampling": engine.sampling.as_dict(),
            "dropped_messages": trimmed,
            "error": finished.error,
        }, ensure_ascii=False))
    elif args.stats:
        s = finished.stats
        print(
            f"[{s.prompt_tokens} prompt tokens ({s.prompt_eval_tokens} evaluated), {s.generated_tokens} "
            f"generated, ttft {s.time_to_first_token_s:.2f}s, {s.decode_tokens_per_s:.1f} tok/s, "
            f"stop: {s.stop_reason}]",
            file=sys.stderr,
        )
    if notice is not None:
        print(f"localr1: {notice}", file=sys.stderr)
    engine.close()
    if finished.error:
        print(f"localr1: error: {finished.error}", file=sys.stderr)
        return 1
    return 130 if finished.stats.stop_reason == "cancelled" or interrupted else 0
