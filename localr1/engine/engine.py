"""The engine: loads a GGUF through llama-cpp-python and streams typed chat events."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import llama_cpp

from localr1.engine.abort import AbortSwitch
from localr1.engine.events import (
    ContextTrimmed,
    Event,
    Finished,
    GenerationStats,
    LengthLimit,
    StopReason,
)
from localr1.engine.fit import cut_points
from localr1.engine.load_log import captured_log, memory_failure
from localr1.engine.loading import open_llama
from localr1.engine.params import LoadParams, SamplingParams, SpeedPrediction
from localr1.engine.reasoning_controller import ReasoningController
from localr1.engine.residency import WINDOW_S, DecodeWatch
from localr1.engine.template import ChatMessage, RenderedPrompt, compile_template, render
from localr1.engine.thinking import CLOSED_THINKING, ThinkingControl
from localr1.engine.vocab import Vocab
from localr1.errors import ConfigError, ContextOverflowError, ModelLoadError, ModelMemoryError
from localr1.ggufinfo import GGUFInfo, read_info

MESSAGE_OVERHEAD_TOKENS = 8  # role markers and separators a template adds around each message

GGML_KV_TYPES = {
    "f32": llama_cpp.GGML_TYPE_F32,
    "f16": llama_cpp.GGML_TYPE_F16,
    "bf16": 30,  # GGML_TYPE_BF16, not exported by the bindings
    "q8_0": llama_cpp.GGML_TYPE_Q8_0,
    "q4_0": llama_cpp.GGML_TYPE_Q4_0,
}


@dataclass(frozen=True)
class PreparedPrompt:
    """A conversation fitted to the context and tokenized."""

    tokens: list[int]
    rendered: RenderedPrompt
    dropped_messages: int


class _EvalMeter:
    """Counts the tokens llama.cpp really evaluated (its perf counters clamp at 1)."""

    def __init__(self, llm: llama_cpp.Llama) -> None:
        self.evaluated = 0
        self.reused: int | None = None  # cached tokens kept when the turn's first evaluation began
        original_eval = llm.eval

        def counting_eval(tokens: Sequence[int]) -> None:
            before = llm.n_tokens
            if self.reused is None:
                self.reused = before
            try:
                original_eval(tokens)
            finally:  # an aborted batch leaves n_tokens at the last batch that completed
                self.evaluated += llm.n_tokens - before

        llm.eval = counting_eval  # type: ignore[method-assign]

    def start_turn(self) -> None:
        """Forget the previous turn's starting point."""
        self.reused = None


class Engine:
    """One loaded model. `chat` runs in a worker thread; `cancel` may be called from any thread."""

    def __init__(self, model_path: str | Path, load: LoadParams, sampling: SamplingParams, *,
                 prediction: SpeedPrediction | None = None, plan: dict[str, Any] | None = None) -> None:
        self.info: GGUFInfo = read_info(model_path)
        self.load_params = load.resolved()
        self.sampling = sampling
        self.prediction = prediction  # the planner's steady-state speed: the first seconds are checked against it
        self.plan = plan  # how the planner chose this load (shown by describe())
        self.watch_window_s = WINDOW_S  # decode this long before comparing with the prediction
        self.thinking = ThinkingControl()  # the default reasoning controls: no budget, loop guard on
        self.display_name: str | None = None  # the registry's name for the model, when it is a known one
        self._cancel = threading.Event()
        self._answer_now = threading.Event()
        self._check_params()
        if self.info.chat_template:
            compile_template(self.info.chat_template)  # a broken template fails here, before the load
        started = time.perf_counter()
        self._llm = self._open()
        self.load_seconds = time.perf_counter() - started
        # llama.cpp rounds the context up (to a multiple of 256): expose what it really holds.
        self.load_params = replace(self.load_params, context_size=int(self._llm.n_ctx()))
        self.vocab = Vocab(self._llm._model.vocab)
        self._meter = _EvalMeter(self._llm)
        self._abort = AbortSwitch()  # lives as long as the engine, so as long as the context
        self._abort.attach(self._llm._ctx.ctx)
        self._costs: dict[str, int] = {}
        self._keys: dict[int, int | None] = {}  # the loop guard's key per token

    @property
    def evaluated_tokens(self) -> int:
        """Tokens llama.cpp evaluated and kept since the model was loaded (aborted batches not counted)."""
        return self._meter.evaluated

    def _check_params(self) -> None:
        check_load_params(self.load_params)

    def _open(self) -> llama_cpp.Llama:
        p = self.load_params
        kv_type = GGML_KV_TYPES[p.kv_cache_type]
        with captured_log() as log:
            try:
                return self._open_with(kv_type)
            except (ValueError, RuntimeError) as exc:
                failure = memory_failure(log)
                if failure is not None:
                    raise ModelMemoryError(
                        f"llama.cpp could not allocate the memory to load {self.info.path.name} with "
                        f"{p.context_size} tokens of context ({failure}): try a smaller --ctx, a smaller "
                        "--quant or fewer --gpu-layers"
                    ) from None
                raise ModelLoadError(
                    f"llama.cpp could not load {self.info.path.name}: {exc} "
                    "(try a smaller --ctx, fewer --gpu-layers, or re-convert the file)"
                ) from None

    def _open_with(self, kv_type: int) -> llama_cpp.Llama:
        p = self.load_params
        devices: tuple[int, ...] = ()
        if p.workers:  # only in a child process (engine/isolated.py): a lost worker aborts the process
            from localr1.engine.rpc import local_gpu_devices, worker_devices

            devices = worker_devices(p.workers) + local_gpu_devices()
        return open_llama(
            devices,
            model_path=str(self.info.path),
            n_ctx=p.context_size,
            n_batch=p.batch_size,
            n_threads=p.threads,
            n_threads_batch=p.batch_threads,
            n_gpu_layers=p.gpu_layers,
            type_k=kv_type,
            type_v=kv_type,
            flash_attn=p.flash_attention,
            use_mmap=p.use_mmap,
            use_mlock=p.use_mlock,
            seed=p.seed,
            tensor_split=list(p.tensor_split) or None,
            verbose=False,
        )

    @property
    def context_size(self) -> int:
        """Tokens the context window holds."""
        return int(self._llm.n_ctx())

    @property
    def cached_tokens(self) -> list[int]:
        """Tokens whose keys and values are in the KV cache now."""
        return list(self._llm._input_ids[: self._llm.n_tokens])

    def close(self) -> None:
        """Free the model and context."""
        self._llm.close()

    def reset_cache(self) -> None:
        """Forget the KV cache, so the next prompt is evaluated from scratch."""
        self._llm.reset()  # type: ignore[no-untyped-call]

    def cancel(self) -> None:
        """Stop the running generation; llama_decode gives up within a graph node, even inside a long prompt."""
        self._cancel.set()
        self._abort.trip()

    def render(self, messages: list[ChatMessage]) -> RenderedPrompt:
        """Render messages with the model's template (R1 rules for R1 distills)."""
        return render(
            self.info.chat_template,
            messages,
            bos_token=self.info.bos_token,
            eos_token=self.info.eos_token,
            r1_rules=self.info.is_r1,
        )

    def tokenize_prompt(self, rendered: RenderedPrompt) -> list[int]:
        """Tokenize a rendered prompt without doubling a BOS the template already wrote."""
        return tokenize_prompt(self.vocab, rendered)

    def count_tokens(self, text: str) -> int:
        """Tokens in plain text (no special-token parsing)."""
        return len(self.vocab.tokenize(text, add_bos=False, special=False))

    def _message_cost(self, message: ChatMessage) -> int:
        cost = self._costs.get(message.content)
        if cost is None:
            if len(self._costs) > 4096:
                self._costs.clear()
            cost = self._costs[message.content] = self.count_tokens(message.content) + MESSAGE_OVERHEAD_TOKENS
        return cost

    def prepare(self, messages: list[ChatMessage], reply_reserve: int) -> PreparedPrompt:
        """Fit the conversation so the prompt leaves `reply_reserve`, cutting old turns at stable points."""
        if not messages or messages[-1].role != "user":
            raise ConfigError("a conversation must end with a user message")
        system = [m for m in messages if m.role == "system"]
        turns = [m for m in messages if m.role != "system"]
        budget = self.context_size - reply_reserve
        rendered = self.render(system + turns)
        tokens = self.tokenize_prompt(rendered)
        dropped = 0
        if len(tokens) > budget:
            block = max(budget // 2, 1)
            costs = [self._message_cost(m) for m in turns]
            for cut in cut_points(costs, [m.role for m in turns], block):
                dropped = cut
                rendered = self.render(system + turns[cut:])
                tokens = self.tokenize_prompt(rendered)
                if len(tokens) <= budget:
                    break
        if len(tokens) >= self.context_size:
            raise ContextOverflowError(
                f"the message is {len(tokens)} tokens but the context holds {self.context_size}; "
                "shorten it or raise the context size (--ctx)"
            )
        return PreparedPrompt(tokens, rendered, dropped)

    def answer_now(self) -> None:
        """End the thinking at the next token, keeping it, and answer (from any thread; inert when not thinking)."""
        self._answer_now.set()

    def chat(
        self,
        messages: list[ChatMessage],
        sampling: SamplingParams | None = None,
        thinking: ThinkingControl | None = None,
    ) -> Iterator[Event]:
        """Stream thinking and answer deltas for the reply to `messages`, then `Finished`."""
        sp = sampling or self.sampling
        control = thinking or self.thinking
        self._cancel.clear()
        self._answer_now.clear()
        self._abort.reset()
        started = time.perf_counter()
        prepared = self.prepare(messages, reply_reserve=min(sp.max_tokens, self.context_size // 4))
        if prepared.dropped_messages:
            yield ContextTrimmed(prepared.dropped_messages, len(prepared.tokens), self.context_size)
        closed_in_prompt = control.answer_directly and prepared.rendered.opens_thinking
        if closed_in_prompt:
            prepared = close_thinking_in_prompt(prepared, self._forced(CLOSED_THINKING))
        yield from self._generate(prepared, sp, control, started, closed_in_prompt)

    def _forced(self, text: str) -> list[int]:
        """Tokens of text fed as if generated (the closing tag parsed as the special token it may be)."""
        return self.vocab.tokenize(text, add_bos=False, special=True)

    def _token_source(self, prepared: PreparedPrompt, sp: SamplingParams) -> Generator[int, Any, None]:
        """Evaluate the prompt (reusing the cached prefix) and sample the reply's tokens."""
        return self._sample_after(prepared.tokens, sp)

    def _sample_after(self, tokens: list[int], sp: SamplingParams) -> Generator[int, Any, None]:
        """Evaluate `tokens` (reusing the cached prefix) and sample what follows."""
        if sp.seed is not None:  # a restart after a forced close draws on, not from the seed's start again
            self._llm.set_seed((sp.seed + self._llm.n_tokens) % 2**32)
        return self._llm.generate(
            tokens,
            temp=sp.temperature,
            top_p=sp.top_p,
            top_k=sp.top_k,
            min_p=sp.min_p,
            repeat_penalty=sp.repeat_penalty,
        )

    def _generate(
        self, prepared: PreparedPrompt, sp: SamplingParams, control: ThinkingControl, started: float,
        closed_in_prompt: bool,
    ) -> Iterator[Event]:
        steer = ReasoningController(self.vocab, control, prepared.rendered.opens_thinking, closed_in_prompt,
                                    self._keys)
        reply = steer.reply
        prompt_eval: int | None = None
        first_token_at: float | None = None
        last_token_at = started
        stop: StopReason = "length"
        limit: LengthLimit | None = None
        error: str | None = None
        self._meter.start_turn()
        evaluated_before = self._meter.evaluated
        watch = DecodeWatch(self.prediction, depth=len(prepared.tokens), context=self.context_size,
                            window_s=self.watch_window_s)
        tokens = self._token_source(prepared, sp)
        try:
            while True:
                token = next(tokens, None)
                if token is None:
                    break
                now = time.perf_counter()
                if first_token_at is None:
                    first_token_at = now
                    prompt_eval = self._meter.evaluated - evaluated_before
                if self.vocab.is_end(token):
                    stop = "eos"
                    break
                outcome = steer.step(token, now, self._answer_now.is_set())
                if outcome.kept:
                    last_token_at = now
                    slow = watch.token(now, steer.generated)
                    if slow is not None:
                        yield slow
                yield from outcome.events
                if outcome.stop:
                    stop = "repetition"
                    break
                restart: list[int] | None = None
                if outcome.close is not None:
                    restart = self.cached_tokens + ([token] if outcome.kept else []) + self._forced(steer.forced_text)
                if self._cancel.is_set():
                    stop = "cancelled"
                    break
                if steer.generated >= sp.max_tokens:
                    stop, limit = "length", "max_tokens"
                    break
                to_eval = len(restart) - self._llm.n_tokens if restart is not None else 1
                if self._llm.n_tokens + to_eval >= self.context_size:
                    stop, limit = "length", "context"
                    break
                if restart is not None:
                    tokens.close()
                    tokens = self._sample_after(restart, sp)
        except RuntimeError as exc:  # llama_decode failures surface here, an abort among them
            if self._abort.tripped:
                stop = "cancelled"
            else:
                stop, error = "error", f"generation failed: {exc}"
        finally:
            tokens.close()
            self._abort.reset()
        yield from reply.finish()
        if prompt_eval is None:  # stopped before the first token: count what was read
            prompt_eval = self._meter.evaluated - evaluated_before
        reused = self._meter.reused if self._meter.reused is not None else len(prepared.tokens)
        ttft = (first_token_at or time.perf_counter()) - started
        decode_s = last_token_at - first_token_at if first_token_at is not None else 0.0
        stats = GenerationStats(
            prompt_tokens=len(prepared.tokens),
            prompt_eval_tokens=prompt_eval,
            cached_tokens=min(reused, len(prepared.tokens)),
            generated_tokens=steer.generated,
            time_to_first_token_s=ttft,
            decode_s=decode_s,
            decode_tokens_per_s=(steer.generated - 1) / decode_s if steer.generated > 1 and decode_s > 0 else 0.0,
            stop_reason=stop,
            length_limit=limit,
            thinking_cut_off=stop == "length" and reply.in_thinking,
            thinking_tokens=steer.thinking_tokens,
            thinking_ended_by=steer.ended_by,
            loop_detected_after=steer.loop_after,
        )
        yield Finished(reply.thinking, reply.answer, stats, error)

    def describe(self) -> dict[str, Any]:
        """Model and load facts, for `--json` output and the UI status bar."""
        return {
            "model": self.info.name,
            "display_name": self.display_name,
            "reasoning": self.info.is_r1,  # replies start inside <think>: the thinking controls apply
            "path": str(self.info.path),
            "architecture": self.info.architecture,
            "quant": self.info.file_type,
            "load": self.load_params.as_dict(),
            "load_seconds": round(self.load_seconds, 3),
            "predicted_tokens_per_s": round(self.prediction.decode_tps, 2) if self.prediction else None,
            "plan": self.plan,
        }


def close_thinking_in_prompt(prepared: PreparedPrompt, closed_tokens: list[int]) -> PreparedPrompt:
    """Budget 0: the prompt ends with a closed, empty thinking block, so the reply starts in the answer."""
    rendered = replace(prepared.rendered, text=prepared.rendered.text + CLOSED_THINKING, opens_thinking=False)
    return replace(prepared, rendered=rendered, tokens=prepared.tokens + closed_tokens)


def tokenize_prompt(vocab: Vocab, rendered: RenderedPrompt) -> list[int]:
    """Tokenize a rendered prompt (special tokens parsed) with exactly the BOS the model wants, once."""
    return vocab.tokenize(rendered.text, add_bos=vocab.adds_bos and not rendered.starts_with_bos, special=True)


def check_load_params(p: LoadParams) -> None:
    """Refuse load parameters llama.cpp would reject or misuse, with what to do instead."""
    if p.context_size < 64:
        raise ConfigError(f"context size {p.context_size} is too small (use at least 64)")
    if p.kv_cache_type not in GGML_KV_TYPES:
        raise ConfigError(f"unknown KV cache type '{p.kv_cache_type}' (choose from {', '.join(GGML_KV_TYPES)})")
    if p.kv_cache_type in ("q8_0", "q4_0") and not p.flash_attention:
        raise ConfigError(f"a {p.kv_cache_type} KV cache needs flash attention (add --flash-attn, or use f16)")
