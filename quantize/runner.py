"""A GGUF opened through llama.cpp's low-level API: logits for every position, an evaluation callback, decode timing."""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import llama_cpp
import numpy as np
import numpy.typing as npt
from llama_cpp._internals import LlamaBatch, LlamaContext, LlamaModel

from localr1.engine.params import default_threads
from localr1.errors import ModelLoadError
from quantize.llama_log import capture_llama_log

EvalCallback = Callable[[int, bool, int], bool]  # (tensor address, ask, user data) -> bool


class Runner:
    """One model and one context; `cb_eval` sees every graph node when given."""

    def __init__(
        self,
        path: str | Path,
        *,
        n_ctx: int = 512,
        threads: int = 0,
        eval_callback: EvalCallback | None = None,
    ) -> None:
        self.path = Path(path)
        self.threads = threads or default_threads()
        # keep the ctypes callback alive as long as the context exists
        self._c_callback = (
            llama_cpp.ggml_backend_sched_eval_callback(eval_callback) if eval_callback is not None else None
        )
        with capture_llama_log() as log:
            try:
                params = llama_cpp.llama_model_default_params()
                params.n_gpu_layers = 0
                self.model = LlamaModel(path_model=str(self.path), params=params, verbose=False)
                ctx_params = llama_cpp.llama_context_default_params()
                ctx_params.n_ctx = n_ctx
                ctx_params.n_batch = n_ctx
                ctx_params.n_ubatch = min(n_ctx, 512)
                ctx_params.n_seq_max = 1
                ctx_params.n_threads = self.threads
                ctx_params.n_threads_batch = self.threads
                ctx_params.no_perf = True
                if self._c_callback is not None:
                    ctx_params.cb_eval = self._c_callback
                    ctx_params.cb_eval_user_data = None
                self.ctx = LlamaContext(model=self.model, params=ctx_params, verbose=False)
            except (ValueError, RuntimeError) as exc:
                detail = log.last_error() or str(exc)
                raise ModelLoadError(f"llama.cpp could not load {self.path.name}: {detail}") from None
        self.n_ctx = int(llama_cpp.llama_n_ctx(self.ctx.ctx))
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.model.vocab))
        self.batch = LlamaBatch(n_tokens=self.n_ctx, embd=0, n_seq_max=1, verbose=False)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Free the batch, context and model."""
        with capture_llama_log():
            self.batch.close()  # type: ignore[no-untyped-call]
            self.ctx.close()  # type: ignore[no-untyped-call]
            self.model.close()  # type: ignore[no-untyped-call]

    def tokenize(self, text: str, add_bos: bool) -> list[int]:
        """Tokens of a text, special tokens parsed."""
        tokens: list[int] = self.model.tokenize(text.encode("utf-8"), add_bos, True)
        return tokens

    @property
    def adds_bos(self) -> bool:
        """Whether the model's tokenizer wants BOS added."""
        return bool(self.model.add_bos_token())

    @property
    def bos(self) -> int:
        """The BOS token id (-1 when none)."""
        return int(self.model.token_bos())

    def _decode(self, tokens: list[int], start: int, all_logits: bool) -> None:
        self.batch.set_batch(tokens, n_past=start, logits_all=all_logits)
        rc = llama_cpp.llama_decode(self.ctx.ctx, self.batch.batch)
        if rc != 0:
            raise ModelLoadError(f"llama.cpp failed to evaluate {len(tokens)} tokens of {self.path.name} (code {rc})")

    def clear(self) -> None:
        """Empty the KV cache."""
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx.ctx), True)

    def logits(self, tokens: list[int]) -> npt.NDArray[np.float32]:
        """Logits for every position of one sequence (rows: positions, columns: vocabulary)."""
        if len(tokens) > self.n_ctx:
            raise ValueError(f"{len(tokens)} tokens do not fit a context of {self.n_ctx}")
        self.clear()
        self._decode(tokens, 0, all_logits=True)
        pointer = llama_cpp.llama_get_logits(self.ctx.ctx)
        array = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)),
                                      shape=(len(tokens), self.n_vocab))
        return np.array(array, dtype=np.float32, copy=True)

    def run(self, tokens: list[int]) -> None:
        """Evaluate one sequence for the evaluation callback. Outputs are requested for every position: with only
        the last one, llama.cpp feeds the last layer's later matrices that one row alone."""
        if len(tokens) > self.n_ctx:
            raise ValueError(f"{len(tokens)} tokens do not fit a context of {self.n_ctx}")
        self.clear()
        self._decode(tokens, 0, all_logits=True)

    def decode_speed(self, prompt: list[int], n_tokens: int) -> float:
        """Greedy single-token decoding after a prompt; tokens per second over n_tokens steps."""
        if len(prompt) + n_tokens > self.n_ctx:
            raise ValueError("prompt and generation do not fit the context")
        self.clear()
        self._decode(prompt, 0, all_logits=False)
        position = len(prompt)
        started = time.perf_counter()
        for _ in range(n_tokens):
            row = llama_cpp.llama_get_logits_ith(self.ctx.ctx, -1)
            logits = np.ctypeslib.as_array(row, shape=(self.n_vocab,))
            token = int(np.argmax(logits))
            self._decode([token], position, all_logits=True)
            position += 1
        elapsed = time.perf_counter() - started
        return n_tokens / elapsed if elapsed > 0 else 0.0
