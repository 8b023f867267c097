"""A Ctrl-C (or SIGTERM, which `batch` and `serve` turn into one) that lands while llama.cpp calls the log callback
during the batch engine's load is kept and raised once the load ends. On main the batch load left the bindings'
own logger in place: ctypes printed "Exception ignored on calling ctypes callback" and dropped the Ctrl-C, so
`serve` went on serving after it. A real load, a real SIGINT."""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path

import pytest

from localr1.engine.params import LoadParams


@pytest.mark.model
def test_ctrl_c_in_the_log_while_the_batch_model_loads_is_raised_after_it(
        demo_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import llama_cpp
    import llama_cpp._logger as default_logger

    from localr1.engine.batch.native import BatchContext

    sent: list[bool] = []

    def interrupting_logger(_level: int, _text: bytes, _user: ctypes.c_void_p) -> None:
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # Python handles the signal between bytecodes: here, inside the callback
                pass

    c_logger = llama_cpp.llama_log_callback(interrupting_logger)
    llama_cpp.llama_log_set(c_logger, ctypes.c_void_p(0))
    loaded: list[BatchContext] = []
    try:
        with pytest.raises(KeyboardInterrupt):
            loaded.append(BatchContext(demo_path, LoadParams(context_size=256, threads=1), 1))
    finally:
        llama_cpp.llama_log_set(default_logger.llama_log_callback, ctypes.c_void_p(0))
        for context in loaded:
            context.close()
    assert sent
    assert "Exception ignored" not in capfd.readouterr().err
