"""SIGTERM and Ctrl-C while `localr1 plan --measure` measures this CPU: exit 143 or 130 with one line, the synthetic
models removed, no speed cached. Before, SIGTERM killed it outright, leaving up to ~114 MB of models in the
temporary folder; a second Ctrl-C while they were removed left them too. Real processes, real signals."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from localr1.interrupts import Terminated, signals_deferred, terminate_as_interrupt
from tests.cli_helpers import start

pytestmark = pytest.mark.model


def _measuring(tmp: Path, timeout: float = 120) -> None:
    """Wait until a synthetic model of the measurement is on disk (llama.cpp is loading or running it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(tmp.glob("localr1-speed-*/*.gguf")):
            return
        time.sleep(0.02)
    raise AssertionError("the measurement never wrote a model")


@pytest.mark.parametrize(("signum", "code", "said"), [(signal.SIGTERM, 143, b"localr1: terminated\n"),
                                                      (signal.SIGINT, 130, b"localr1: interrupted\n")])
def test_a_signal_while_measuring_removes_the_models_and_caches_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, code: int, said: bytes) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    proc = start("plan", "demo", "--measure")
    _measuring(tmp)
    time.sleep(0.3)  # into the timing: a model loaded or running
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert err.endswith(said) and b"Traceback" not in err and b"Exception ignored" not in err, err
    assert list(tmp.iterdir()) == []  # the measurement's folder and models are gone
    assert not list(Path(os.environ["LOCALR1_HOME"]).rglob("cpu-*.json"))


def test_signals_held_while_cleaning_up_are_delivered_after() -> None:
    with pytest.raises(KeyboardInterrupt), signals_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # Python would run a handler between these bytecodes
            pass
        finished = True
    assert finished and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_comes_out_as_terminated_and_the_handler_is_put_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted long before
    assert signal.getsignal(signal.SIGTERM) == before
    with pytest.raises(KeyboardInterrupt) as caught, terminate_as_interrupt():  # a Ctrl-C stays a Ctrl-C
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    assert type(caught.value) is KeyboardInterrupt
