"""A Ctrl-C that lands while llama.cpp calls our log callback is not lost: it cannot cross back into C (ctypes would
print "Exception ignored" and drop it), so it is raised when the captured call returns. A real load, a real SIGINT."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from quantize.llama_log import capture_llama_log


@pytest.mark.model
def test_ctrl_c_inside_the_log_callback_is_raised_after_the_call(demo_path: Path,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    import llama_cpp

    loaded: list[object] = []

    def on_line(_line: str) -> None:
        if not loaded:
            loaded.append("interrupted")
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # Python handles the signal between bytecodes: here, inside the callback
                pass

    with pytest.raises(KeyboardInterrupt), capture_llama_log(on_line) as capture:
        model = llama_cpp.Llama(model_path=str(demo_path), vocab_only=True, verbose=False)
        loaded.append(model)  # the load went on to its end: C was never unwound
        model.close()
    assert capture.interrupted and len(loaded) == 2
    assert "Exception ignored" not in capfd.readouterr().err

