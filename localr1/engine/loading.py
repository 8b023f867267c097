"""Open a GGUF with llama-cpp-python without letting it compile the file's chat template.

`llama_cpp.Llama()` compiles every template in the file with its own Jinja environment, which
folds constant expressions while compiling: a template holding `'A' * 4000000000` makes the
load itself allocate gigabytes, and one with a syntax error fails the load with a Jinja
traceback. localr1 renders prompts itself in a bounded sandbox, so while a model opens the
formatter class is swapped for one that keeps nothing.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import llama_cpp
import llama_cpp.llama_cpp as bindings
from llama_cpp import llama_chat_format

from localr1.errors import TemplateError

_swap_lock = threading.Lock()
_LOAD_FN = "llama_model_load_from_file"


def _no_chat_handler(*_args: Any, **_kwargs: Any) -> Any:
    raise TemplateError("localr1 renders chat prompts itself; llama-cpp-python's chat handler is not used")


class _TemplateNotCompiled:
    """Takes the place of llama-cpp-python's Jinja2ChatFormatter while a model opens."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def to_chat_handler(self) -> Any:
        """A handler that refuses to run."""
        return _no_chat_handler


@contextmanager
def _devices_for_load(devices: Sequence[int]) -> Iterator[None]:
    """Pass an explicit device list (llama_model_params.devices) to the model load inside this block.

    llama-cpp-python has no argument for it, and llama.cpp's default device list leaves RPC workers out.
    """
    if not devices:
        yield
        return
    array = (ctypes.c_void_p * (len(devices) + 1))(*devices, None)  # NULL-terminated
    original = getattr(bindings, _LOAD_FN)

    def load(path: bytes, params: Any) -> Any:
        params.devices = ctypes.cast(array, ctypes.c_void_p).value
        return original(path, params)

    setattr(bindings, _LOAD_FN, load)  # llama-cpp-python's model class looks it up here at each load
    try:
        yield
    finally:
        setattr(bindings, _LOAD_FN, original)


def open_llama(devices: Sequence[int] = (), **params: Any) -> llama_cpp.Llama:
    """`llama_cpp.Llama(**params)`, with the file's chat templates left uncompiled and, when given,
    exactly these ggml devices (pointers) to offload to."""
    with _swap_lock, _devices_for_load(devices):
        original = llama_chat_format.Jinja2ChatFormatter
        llama_chat_format.Jinja2ChatFormatter = _TemplateNotCompiled  # type: ignore[misc, assignment]
        try:
            return llama_cpp.Llama(**params)
        finally:
            llama_chat_format.Jinja2ChatFormatter = original  # type: ignore[misc]

