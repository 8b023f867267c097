"""`localr1 run`: answer one prompt, streaming the answer to stdout."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TextIO

from localr1.engine import (
    AnswerDelta,
    ChatMessage,
    ContextTrimmed,
    Event,
    Finished,
    GenerationStats,
    LoadRequest,
    LoopDetected,
    SlowDecoding,
    ThinkingClosed,
    ThinkingControl,
    ThinkingDelta,
)
from localr1.errors import ConfigError
from localr1.loader import open_engine
from localr1.plaintext import printable
from localr1.presets import apply_preset, last_boxed
from localr1.residency import lock_status_from, slow_decoding_notice
from localr1.streaming import ThreadedStream

if TYPE_CHECKING:
    from localr1.engine.port import ChatEngine

DIM, RESET = "\x1b[2m", "\x1b[0m"
ANSWER_NOW_GRACE_S = 2.0  # a second Ctrl-C this soon after the first one stops


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


def for_terminal(text: str, stream: TextIO) -> str:
    """Model text as it may reach `stream`: control characters shown as `\\x1b` escapes on a terminal (a model's
    output can hold ESC or BEL bytes that would retitle or clear it), the exact text into a pipe or a file."""
    return printable(text, limit=None) if stream.isatty() else text


class TerminalPrinter:
    """Answer to stdout as it arrives; thinking to stderr, dimmed on a terminal; escape sequences shown on one."""

    def __init__(self, show_thinking: bool, out: TextIO, err: TextIO, plan: dict[str, object] | None = None) -> None:
        self.show_thinking = show_thinking
        self.plan = plan
        self.out, self.err = out, err
        self._dim = err.isatty()
        self._out_tty = out.isatty()
        self._in_thinking = False
        self.thinking = False  # the reply is in its thinking now (Ctrl-C then means "answer now")
        self._answer_ends_line = True

    def _end_thinking(self) -> None:
        if self._in_thinking:
            self.err.write((RESET if self._dim else "") + "\n")
            self.err.flush()
            self._in_thinking = False

    def handle(self, event: Event) -> None:
        """Print one event."""
        if isinstance(event, ThinkingDelta):
            self.thinking = True
            if self.show_thinking:
                if not self._in_thinking:
                    self.err.write(DIM if self._dim else "")
                    self._in_thinking = True
                self.err.write(printable(event.text, limit=None) if self._dim else event.text)
                self.err.flush()
        elif isinstance(event, AnswerDelta):
            self.thinking = False
            self._end_thinking()
            self.out.write(printable(event.text, limit=None) if self._out_tty else event.text)
            self.out.flush()
            self._answer_ends_line = event.text.endswith("\n")
        elif isinstance(event, ThinkingClosed):
            self.thinking = False
            self._end_thinking()
            self.err.write(f"[{thinking_closed_notice(event)}]\n")
            self.err.flush()
        elif isinstance(event, LoopDetected):
            self._end_thinking()
            self.out.flush()
            self.err.write(("\n" if not self._answer_ends_line else "") + f"localr1: {loop_notice(event)}\n")
            self.err.flush()
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
            if not self._answer_ends_line:  # so whatever follows (--stats, a notice) starts on its own line
                self.out.write("\n")
            self.out.flush()


def thinking_closed_notice(event: ThinkingClosed) -> str:
    """What the terminal says when the engine ended the thinking."""
    why = {"budget": "the thinking budget is spent", "answer_now": "answering now, as asked",
           "loop": "the thinking went in a loop", "model": "done"}[event.reason]
    return f"thinking ended after {event.thinking_tokens} tokens: {why}"


def loop_notice(event: LoopDetected) -> str:
    """One line about a repetition loop and what was done about it."""
    what = ("thinking ended, answering now" if event.in_thinking else "answer stopped") if event.acted \
        else "going on (--loop-guard warn)"
    unit = f" (a {event.period}-token phrase repeated)" if event.period else " (the same phrases over and over)"
    return f"loop detected after {event.after_tokens} tokens{unit}: {what}"


def thinking_control_from(args: argparse.Namespace) -> ThinkingControl:
    """ThinkingControl from --think-budget and --loop-guard."""
    tokens, seconds = args.think_budget or (None, None)
    return ThinkingControl(budget_tokens=tokens, budget_seconds=seconds, loop_guard=args.loop_guard)


class InterruptPolicy:
    """Ctrl-C while thinking: the first answers now and asks; a second within the grace period stops."""

    def __init__(self, engine: ChatEngine, err: TextIO, clock: Any = time.monotonic) -> None:
        self.engine, self.err, self.clock = engine, err, clock
        self.asked_at: float | None = None
        self.cancelled = False
        self.terminated = False
        self.thinking = False
        self._notice_due = False

    def interrupt(self, thinking: bool | None = None) -> None:
        """Handle one Ctrl-C (safe in a signal handler: it only sets flags); raises KeyboardInterrupt on one
        after the cancel (the user insists)."""
        if self.cancelled:
            raise KeyboardInterrupt
        now = self.clock()
        thinking = self.thinking if thinking is None else thinking
        if thinking and (self.asked_at is None or now - self.asked_at > ANSWER_NOW_GRACE_S):
            self.asked_at = now
            self.engine.answer_now()
            self._notice_due = True
            return
        self.cancelled = True
        self.engine.cancel()  # the stream goes on to its Finished event

    def terminate(self) -> None:
        """SIGTERM: stop as a second Ctrl-C does (what arrived is kept and printed); a second one insists."""
        if self.terminated:
            raise KeyboardInterrupt
        self.terminated = self.cancelled = True
        self.engine.cancel()

    def flush_notice(self) -> None:
        """Say what the last Ctrl-C did, outside the signal handler (the thinking may be mid-write on err)."""
        if self._notice_due:
            self._notice_due = False
            self.err.write(f"\n[answering now: press Ctrl-C again within {ANSWER_NOW_GRACE_S:g} s to stop]\n")
            self.err.flush()


@contextlib.contextmanager
def sigint_to(policy: InterruptPolicy) -> Iterator[None]:
    """Route Ctrl-C (and SIGTERM, which stops) to the policy wherever the main thread is (waiting for a token or
    printing one); elsewhere than the main thread, KeyboardInterrupt is left to the caller."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: policy.interrupt())
    previous_term = signal.signal(signal.SIGTERM, lambda _signum, _frame: policy.terminate())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


def _stream_reply(stream: ThreadedStream[Event], policy: InterruptPolicy, printer: TerminalPrinter | None,
                  engine: ChatEngine) -> tuple[Finished, int, SlowDecoding | None]:
    """Print the reply as it streams; return its Finished event, the dropped messages and a slow-decoding event."""
    finished: Finished | None = None
    trimmed = 0
    slow: SlowDecoding | None = None
    while True:
        try:
            event = stream.next()
        except KeyboardInterrupt:  # not on the main thread: no handler routes Ctrl-C to the policy
            policy.interrupt()
            continue
        policy.flush_notice()
        if event is None:
            break
        if isinstance(event, ThinkingDelta):
            policy.thinking = True
        elif isinstance(event, AnswerDelta | ThinkingClosed):
            policy.thinking = False
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
    return finished, trimmed, slow


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


def stats_text(s: GenerationStats) -> str:
    """The --stats line."""
    thinking = f", {s.thinking_tokens} thinking" if s.thinking_tokens else ""
    ended = f" (ended by {s.thinking_ended_by.replace('_', '-')})" if s.thinking_ended_by not in (None, "model") else ""
    loop = f", loop detected after {s.loop_detected_after} tokens" if s.loop_detected_after is not None else ""
    return (f"[{s.prompt_tokens} prompt tokens ({s.prompt_eval_tokens} evaluated), {s.generated_tokens} "
            f"generated{thinking}{ended}, ttft {s.time_to_first_token_s:.2f}s, {s.decode_tokens_per_s:.1f} tok/s, "
            f"stop: {s.stop_reason}{loop}]")


def _on_sigusr1(action: Any) -> Any:
    """SIGUSR1 means "answer now" while this runs (where the platform has it); returns the old handler."""
    if not hasattr(signal, "SIGUSR1"):
        return None
    return signal.signal(signal.SIGUSR1, lambda _sig, _frame: action())


def _restore_sigusr1(previous: Any) -> None:
    if hasattr(signal, "SIGUSR1") and previous is not None:
        signal.signal(signal.SIGUSR1, previous)


def run_command(args: argparse.Namespace) -> int:
    """Load the model, stream the reply, and return the exit code (130 when interrupted)."""
    answer_now: list[Any] = []  # SIGUSR1 before the model is loaded is ignored, never fatal
    previous_usr1 = _on_sigusr1(lambda: [action() for action in answer_now])
    try:  # SIGTERM while the model loads: the command line's terminate_as_interrupt; the answer has its own
        return _run(args, answer_now)
    finally:
        _restore_sigusr1(previous_usr1)


def _run(args: argparse.Namespace, answer_now: list[Any]) -> int:
    prompt = read_prompt(args.prompt, sys.stdin)
    overrides = {
        "temperature": args.temperature,
        "top_p": args.top_p,
        "top_k": args.top_k,
        "max_tokens": args.max_tokens,
        "seed": args.seed,
    }
    control = thinking_control_from(args)
    notices: list[str] = []

    def notify(text: str) -> None:
        notices.append(text)
        if not args.json:
            print(f"localr1: {printable(text, limit=None)}", file=sys.stderr, flush=True)

    engine = open_engine(args.model, load_request_from(args), overrides, notify=notify)
    facts = engine.describe()
    plan = facts.get("plan")
    if not args.json and isinstance(plan, dict):
        print(f"localr1: plan: {printable(str(plan['summary']), limit=None)}", file=sys.stderr, flush=True)
    messages = [ChatMessage("system", args.system)] if args.system else []
    messages.append(ChatMessage("user", apply_preset(prompt, args.preset)))
    printer = None if args.json else TerminalPrinter(not args.hide_thinking, sys.stdout, sys.stderr,
                                                     plan if isinstance(plan, dict) else None)
    policy = InterruptPolicy(engine, sys.stderr)
    answer_now.append(engine.answer_now)
    stream = ThreadedStream(lambda: engine.chat(messages, None, control))
    with sigint_to(policy):
        finished, trimmed, slow = _stream_reply(stream, policy, printer, engine)
    policy.flush_notice()
    interrupted = policy.cancelled
    notice = cut_off_notice(finished.stats, engine.sampling.max_tokens, engine.context_size)
    boxed = last_boxed(finished.answer) if args.preset == "math" else None
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
            "boxed": boxed,
            "preset": args.preset,
            "thinking_control": asdict(control),
            "stop_reason": finished.stats.stop_reason,
            "truncated": finished.stats.truncated,
            "notice": notice,
            "stats": asdict(finished.stats),
            "sampling": engine.sampling.as_dict(),
            "dropped_messages": trimmed,
            "error": finished.error,
        }, ensure_ascii=False))
    else:
        if boxed is not None:
            print(f"boxed answer: {for_terminal(boxed, sys.stderr)}", file=sys.stderr)
        if args.stats:
            print(stats_text(finished.stats), file=sys.stderr)
    if notice is not None:
        print(f"localr1: {notice}", file=sys.stderr)
    engine.close()
    if finished.error:  # its text can come from llama.cpp or a worker's log: shown as escapes, on one line
        print(f"localr1: error: {printable(finished.error).replace(chr(10), ' ')}", file=sys.stderr)
        return 1
    if policy.terminated:
        return 128 + signal.SIGTERM
    return 130 if finished.stats.stop_reason == "cancelled" or interrupted else 0
