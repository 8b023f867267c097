"""Notice every llama.cpp model load, quantization and decode, so a test that runs llama.cpp without the
`model` marker can be caught (in this process, and in child processes through sitecustomize.py)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

WATCHED = ("llama_model_load_from_file", "llama_model_quantize", "llama_decode")
LOG_ENV = "LOCALR1_TEST_LLAMA_LOG"  # child processes append the running test's id here


def install(record: Callable[[str], None]) -> None:
    """Wrap the watched llama.cpp functions of `llama_cpp` and `llama_cpp.llama_cpp` to call record(name)."""
    import llama_cpp
    import llama_cpp.llama_cpp as low

    for name in WATCHED:
        original = getattr(low, name)
        if getattr(original, "_localr1_watched", False):
            continue

        def wrapper(*args: Any, _name: str = name, _original: Any = original) -> Any:
            record(_name)
            return _original(*args)

        functools.update_wrapper(wrapper, original, assigned=("__name__", "__doc__"), updated=())
        wrapper._localr1_watched = True  # type: ignore[attr-defined]
        for module in (low, llama_cpp):
            if getattr(module, name, None) is original:
                setattr(module, name, wrapper)


def record_to_log(name: str) -> None:
    """In a child process: append 'test id<TAB>function' to the log named by LOCALR1_TEST_LLAMA_LOG."""
    log = os.environ.get(LOG_ENV)
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    if log and test:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{test}\t{name}\n")


class _AfterImport:
    """A meta-path hook that installs the watch right after llama_cpp has been imported."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "llama_cpp":
            return None
        import importlib.machinery

        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        run_module = loader.exec_module

        def exec_module(module: Any) -> None:
            run_module(module)
            install(_once_per_name())

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _once_per_name() -> Callable[[str], None]:
    seen: set[str] = set()

    def record(name: str) -> None:
        if name not in seen:
            seen.add(name)
            record_to_log(name)

    return record


def watch_child() -> None:
    """Called from sitecustomize.py in child processes started by tests."""
    if os.environ.get(LOG_ENV):
        sys.meta_path.insert(0, _AfterImport())
