"""One llama.cpp context holding several sequences: the model, the context and a reusable `llama_batch`.

With RPC workers (`LoadParams.workers`) the layers are placed on the workers' devices as `run` places them;
a worker lost mid-decode aborts this process (llama.cpp's RPC client has no error path), so with workers this
runs in a child process (engine/batch/isolated.py). Each sequence lives in its own KV stream (`kv_unified`
off): sequences that share no prefix attend only to their own cells, and freeing one (`llama_memory_seq_rm`)
never touches the others.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
from llama_cpp import _internals
from llama_cpp._logger import set_verbose

from localr1.engine.abort import AbortSwitch
from localr1.engine.engine import GGML_KV_TYPES
from localr1.engine.load_log import captured_log
from localr1.engine.params import LoadParams
from localr1.errors import ModelLoadError


@dataclass(frozen=True)
class BatchEntry:
    """One token of the next decode: which sequence, at which position, and whether its logits are wanted."""

    token: int
    seq_id: int
    pos: int
    wants_logits: bool


def _devices(load: LoadParams) -> ctypes.Array[ctypes.c_void_p] | None:
    """The RPC workers' devices, then this machine's GPUs, NULL-terminated (llama_model_params.devices);
    None without workers (llama.cpp's default list, which leaves workers out)."""
    if not load.workers:
        return None
    from localr1.engine.rpc import local_gpu_devices, worker_devices

    pointers = worker_devices(load.workers) + local_gpu_devices()
    return (ctypes.c_void_p * (len(pointers) + 1))(*pointers, None)


def _tensor_split(load: LoadParams) -> ctypes.Array[ctypes.c_float] | None:
    """Each device's share of the offloaded layers, in the order of `_devices`."""
    if not load.tensor_split:
        return None
    if len(load.tensor_split) > llama_cpp.LLAMA_MAX_DEVICES:
        raise ModelLoadError(f"{len(load.tensor_split)} devices to split the model over, but this llama.cpp build "
                             f"takes at most {llama_cpp.LLAMA_MAX_DEVICES}: use fewer --workers")
    size: int = llama_cpp.LLAMA_MAX_DEVICES
    return (ctypes.c_float * size)(*load.tensor_split)


@functools.cache
def _ensure_backend() -> None:
    """Initialise llama.cpp's backends once, with its log quiet below errors (as `Llama(verbose=False)` does)."""
    set_verbose(False)
    llama_cpp.llama_backend_init()


class BatchContext:
    """A model and a context with `sequences` KV streams of `load.context_size` tokens each."""

    def __init__(self, model_path: Path, load: LoadParams, sequences: int) -> None:
        _ensure_backend()
        self.sequences = sequences
        self.batch_size = load.batch_size
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = load.gpu_layers
        model_params.use_mmap = load.use_mmap
        self._device_list, self._split = _devices(load), _tensor_split(load)  # kept alive while the model loads
        if self._device_list is not None:
            model_params.devices = ctypes.cast(self._device_list, ctypes.c_void_p).value
        if self._split is not None:
            model_params.tensor_split = self._split
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = load.context_size * sequences
        params.n_batch = load.batch_size
        params.n_ubatch = load.batch_size
        params.n_seq_max = sequences
        params.kv_unified = False
        params.n_threads = load.threads
        params.n_threads_batch = load.batch_threads
        params.type_k = params.type_v = GGML_KV_TYPES[load.kv_cache_type]
        params.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if load.flash_attention
                                  else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        params.no_perf = True
        loaded: list[_internals.LlamaModel | _internals.LlamaContext] = []
        try:  # llama.cpp's log goes through our callback: a Ctrl-C landing in it is raised after the load, not lost
            with captured_log():
                self._model, self._ctx = self._load(model_path, model_params, params, sequences=sequences,
                                                    context=load.context_size, loaded=loaded)
        except BaseException:
            for thing in reversed(loaded):  # the context before its model
                thing.close()  # type: ignore[no-untyped-call]
            raise
        self.ctx = self._ctx.ctx
        self.vocab_pointer = self._model.vocab
        self.slot_context = int(llama_cpp.llama_n_ctx_seq(self.ctx))
        self._memory = llama_cpp.llama_get_memory(self.ctx)
        self.abort = AbortSwitch()  # lives as long as the context
        self.abort.attach(self.ctx)
        self._batch = llama_cpp.llama_batch_init(self.batch_size, 0, 1)
        self._closed = False

    @staticmethod
    def _load(model_path: Path, model_params: llama_cpp.llama_model_params, params: llama_cpp.llama_context_params,
              *, sequences: int, context: int, loaded: list[_internals.LlamaModel | _internals.LlamaContext]
              ) -> tuple[_internals.LlamaModel, _internals.LlamaContext]:
        """The model and its context, each appended to `loaded` as soon as it exists (the caller frees them)."""
        try:
            model = _internals.LlamaModel(path_model=str(model_path), params=model_params, verbose=False)
        except ValueError as exc:
            raise ModelLoadError(f"llama.cpp could not load {model_path.name}: {exc} "
                                 "(try fewer --gpu-layers, or re-convert the file)") from None
        loaded.append(model)
        try:
            ctx = _internals.LlamaContext(model=model, params=params, verbose=False)
        except ValueError:
            raise ModelLoadError(
                f"llama.cpp could not make a context of {sequences} × {context} tokens for "
                f"{model_path.name}: use fewer --parallel sequences or a smaller --ctx") from None
        loaded.append(ctx)
        return model, ctx

    def decode(self, entries: list[BatchEntry]) -> dict[int, int]:
        """Evaluate up to `batch_size` tokens in one call; returns each logits-wanting sequence's output index.

        Raises RuntimeError when llama.cpp fails or the abort switch stopped it."""
        batch = self._batch
        outputs: dict[int, int] = {}
        for i, entry in enumerate(entries):
            batch.token[i] = entry.token
            batch.pos[i] = entry.pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = entry.seq_id
            batch.logits[i] = entry.wants_logits
            if entry.wants_logits:
                outputs[entry.seq_id] = i
        batch.n_tokens = len(entries)
        code = llama_cpp.llama_decode(self.ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")
        return outputs

    def free_sequence(self, seq_id: int) -> None:
        """Forget a sequence's keys and values so its slot starts empty."""
        llama_cpp.llama_memory_seq_rm(self._memory, seq_id, -1, -1)

    def close(self) -> None:
        """Free the batch, the context and the model."""
        if self._closed:
            return
        self._closed = True
        llama_cpp.llama_batch_free(self._batch)
        self._ctx.close()  # type: ignore[no-untyped-call]
        self._model.close()  # type: ignore[no-untyped-call]

