"""A Ctrl-C that lands while llama.cpp calls our log callback is not lost by the engine's load-log capture (the
calibration's too): it is raised once the block ends, after the load ran to its end. A real load, a real SIGINT."""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path

import pytest

from localr1.engine.load_log import captured_log


@pytest.mark.model
@pytest.mark.parametrize("chain", [True, False])
def test_ctrl_c_in_the_load_log_is_raised_after_the_load(demo_path: Path, chain: bool,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    import llama_cpp

    from localr1.engine import llama_log

    loaded: list[object] = []
    real_router = llama_log.routed_llama_log

    def interrupting(on_piece: llama_log.PieceHandler, *, chain: bool = False) -> object:
        def piece(level: int, text: bytes) -> None:
            on_piece(level, text)
            if not loaded:
                loaded.append("interrupted")
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(1000):  # Python handles the signal between bytecodes: here, inside the callback
                    pass
        return real_router(piece, chain=chain)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("localr1.engine.load_log.routed_llama_log", interrupting)
        with pytest.raises(KeyboardInterrupt), captured_log(chain=chain) as lines:
            model = llama_cpp.Llama(model_path=str(demo_path), vocab_only=True, verbose=False)
            loaded.append(model)  # the load went on to its end: C was never unwound
            model.close()
    assert len(loaded) == 2 and lines  # the log was captured up to the interrupt
    assert "Exception ignored" not in capfd.readouterr().err


@pytest.mark.model
def test_a_ctrl_c_in_the_chained_logger_is_raised_after_the_load(demo_path: Path) -> None:
    """The logger set before (a caller's own) is called from inside our callback: a Ctrl-C there is kept too."""
    import llama_cpp

    sent: list[bool] = []

    def caller_logger(_level: int, _text: bytes, _user: ctypes.c_void_p) -> None:
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass

    c_logger = llama_cpp.llama_log_callback(caller_logger)
    llama_cpp.llama_log_set(c_logger, ctypes.c_void_p(0))
    try:
        loaded = []
        with pytest.raises(KeyboardInterrupt), captured_log() as lines:
            model = llama_cpp.Llama(model_path=str(demo_path), vocab_only=True, verbose=False)
            loaded.append(model)  # the load went on to its end: the interrupt waited for the block's end
            model.close()
        assert sent and loaded and lines
    finally:
        import llama_cpp._logger as default_logger

        llama_cpp.llama_log_set(default_logger.llama_log_callback, ctypes.c_void_p(0))
