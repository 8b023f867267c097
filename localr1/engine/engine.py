"""The engine: loads a GGUF through llama-cpp-python and streams typed chat events."""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import llama_cpp

from localr1.engine.events import (
    AnswerDelta,
    ContextTrimmed,
    Event,
    Finished,
    GenerationStats,
    StopReason,
    ThinkingDelta,
)
from localr1.engine.params import LoadParams, SamplingParams
from localr1.engine.reasoning import ReasoningParser, Segment
from localr1.engine.template import ChatMessage, RenderedPrompt, render
from localr1.errors import ConfigError, ContextOverflowError, ModelLoadError
from localr1.ggufinfo import GGUFInfo, read_info

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


class Engine:
    """One loaded model. `chat` runs in a worker thread; `cancel` may be called from any thread."""

    def __init__(self, model_path: str | Path, load: LoadParams, sampling: SamplingParams) -> None:
        self.info: GGUFInfo = read_info(model_path)
        self.load_params = load.resolved()
        self.sampling = sampling
        self._cancel = threading.Event()
        self._check_params()
        started = time.perf_counter()
        self._llm = self._open()
        self.load_seconds = time.perf_counter() - started
        # llama.cpp rounds the context up (to a multiple of 256): expose what it really holds.
        self.load_params = replace(self.load_params, context_size=int(self._llm.n_ctx()))
        self._vocab = self._llm._model.vocab
        self._count_evaluated_tokens()
        self._add_bos = bool(self._llm._model.add_bos_token())

    def _count_evaluated_tokens(self) -> None:
        """Count every token sent to llama_decode (llama.cpp's perf counters clamp at 1)."""
        self.evaluated_tokens = 0
        original_eval = self._llm.eval

        def counting_eval(tokens: Sequence[int]) -> None:
            self.evaluated_tokens += len(tokens)
            original_eval(tokens)

        self._llm.eval = counting_eval  # type: ignore[method-assign]

    def _check_params(self) -> None:
        p = self.load_params
        if p.context_size < 64:
            raise ConfigError(f"context size {p.context_size} is too small (use at least 64)")
        if p.kv_cache_type not in GGML_KV_TYPES:
            raise ConfigError(
                f"unknown KV cache type '{p.kv_cache_type}' (choose from {', '.join(GGML_KV_TYPES)})"
            )
        if p.kv_cache_type in ("q8_0", "q4_0") and not p.flash_attention:
            raise ConfigError(
                f"a {p.kv_cache_type} KV cache needs flash attention (add --flash-attn, or use f16)"
            )

    def _open(self) -> llama_cpp.Llama:
        p = self.load_params
        kv_type = GGML_KV_TYPES[p.kv_cache_type]
        try:
            return llama_cpp.Llama(
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
                seed=p.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {self.info.path.name}: {exc} "
                "(try a smaller --ctx, fewer --gpu-layers, or re-convert the file)"
            ) from None

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
        """Ask the running generation to stop after the current token."""
        self._cancel.set()

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
        add_bos = self._add_bos and not rendered.starts_with_bos
        return list(self._llm.tokenize(rendered.text.encode("utf-8"), add_bos=add_bos, special=True))

    def count_tokens(self, text: str) -> int:
        """Tokens in plain text (no special-token parsing)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prepare(self, messages: list[ChatMessage], reply_reserve: int) -> PreparedPrompt:
        """Fit the conversation: drop the oldest turns until the prompt leaves `reply_reserve`."""
        if not messages or messages[-1].role != "user":
            raise ConfigError("a conversation must end with a user message")
        system = [m for m in messages if m.role == "system"]
        turns = [m for m in messages if m.role != "system"]
        dropped = 0
        while True:
            rendered = self.render(system + turns)
            tokens = self.tokenize_prompt(rendered)
            if len(tokens) + reply_reserve <= self.context_size or len(turns) == 1:
                break
            # Drop the oldest message, and the assistant reply that answered it.
            cut = 2 if len(turns) > 2 and turns[1].role == "assistant" else 1
            turns = turns[cut:]
            dropped += cut
        if len(tokens) >= self.context_size:
            raise ContextOverflowError(
                f"the message is {len(tokens)} tokens but the context holds {self.context_size}; "
                "shorten it or raise the context size (--ctx)"
            )
        return PreparedPrompt(tokens, rendered, dropped)

    def chat(self, messages: list[ChatMessage], sampling: SamplingParams | None = None) -> Iterator[Event]:
        """Stream thinking and answer deltas for the reply to `messages`, then `Finished`."""
        sp = sampling or self.sampling
        self._cancel.clear()
        started = time.perf_counter()
        prepared = self.prepare(messages, reply_reserve=min(sp.max_tokens, self.context_size // 4))
        if prepared.dropped_messages:
            yield ContextTrimmed(prepared.dropped_messages, len(prepared.tokens), self.context_size)
        yield from self._generate(prepared, sp, started)

    def _generate(self, prepared: PreparedPrompt, sp: SamplingParams, started: float) -> Iterator[Event]:
        llm = self._llm
        parser = ReasoningParser(start_in_thinking=prepared.rendered.opens_thinking)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        thinking: list[str] = []
        answer: list[str] = []
        generated = 0
        prompt_eval = 0
        first_token_at: float | None = None
        last_token_at = started
        stop: StopReason = "length"
        error: str | None = None
        if sp.seed is not None:
            llm.set_seed(sp.seed)
        evaluated_before = self.evaluated_tokens
        tokens = llm.generate(
            prepared.tokens,
            temp=sp.temperature,
            top_p=sp.top_p,
            top_k=sp.top_k,
            min_p=sp.min_p,
            repeat_penalty=sp.repeat_penalty,
        )

        def route(segments: list[Segment]) -> Iterator[Event]:
            for segment in segments:
                if segment.channel == "thinking":
                    thinking.append(segment.text)
                    yield ThinkingDelta(segment.text)
                else:
                    answer.append(segment.text)
                    yield AnswerDelta(segment.text)

        try:
            for token in tokens:
                now = time.perf_counter()
                if first_token_at is None:
                    first_token_at = now
                    prompt_eval = self.evaluated_tokens - evaluated_before
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    stop = "eos"
                    break
                generated += 1
                last_token_at = now
                yield from route(parser.feed(decoder.decode(llm.detokenize([token], special=False))))
                if self._cancel.is_set():
                    stop = "cancelled"
                    break
                if generated >= sp.max_tokens or llm.n_tokens + 1 >= self.context_size:
                    stop = "length"
                    break
        except RuntimeError as exc:  # llama_decode failures surface here
            stop, error = "error", f"generation failed: {exc}"
        finally:
            tokens.close()
        yield from route(parser.feed(decoder.decode(b"", final=True)) + parser.finish())
        ttft = (first_token_at or time.perf_counter()) - started
        decode_s = last_token_at - first_token_at if first_token_at is not None else 0.0
        stats = GenerationStats(
            prompt_tokens=len(prepared.tokens),
            prompt_eval_tokens=prompt_eval,
            cached_tokens=len(prepared.tokens) - prompt_eval,
            generated_tokens=generated,
            time_to_first_token_s=ttft,
            decode_s=decode_s,
            decode_tokens_per_s=(generated - 1) / decode_s if generated > 1 and decode_s > 0 else 0.0,
            stop_reason=stop,
        )
        yield Finished("".join(thinking), "".join(answer), stats, error)

    def describe(self) -> dict[str, Any]:
        """Model and load facts, for `--json` output and the UI status bar."""
        return {
            "model": self.info.name,
            "path": str(self.info.path),
            "architecture": self.info.architecture,
            "quant": self.info.file_type,
            "load": self.load_params.as_dict(),
            "load_seconds": round(self.load_seconds, 3),
        }
