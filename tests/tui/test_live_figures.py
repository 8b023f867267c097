"""The figures that move while an answer streams, driven by a clock the test steps piece by piece."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from localr1.engine.params import LoadParams, LoadRequest
from localr1.tui.app import LocalR1App
from localr1.tui.monitor import MemoryReading, SystemMonitor
from tests.tui.conftest import AppMaker, FakeClock
from tests.tui.fake_engine import FakeEngine, FakeFactory, FakeScript
from tests.tui.helpers import ready, send, wait_for

THINKING = ["Step one. ", "Step two. ", "Step three. "]
ANSWER = ["The answer ", "is 42."]


def speed(app: LocalR1App) -> str:
    return str(app.status_bar.speed_label.render())


async def test_live_speed_thinking_time_and_timed_saves_follow_the_clock(make_app: AppMaker) -> None:
    clock, pace = FakeClock(), threading.Semaphore(0)
    app = make_app(FakeScript(thinking=THINKING, answer=ANSWER, pace=pace), clock=clock)
    async with app.run_test() as pilot:
        await ready(pilot)
        app.prompt.text = "Question"
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(app.chat.session.turns) and app.chat.generating)
        view = app.transcript.views[-1]
        cid = app.chat.session.conversation_id
        assert cid is not None

        def row_text() -> tuple[str, str, str]:
            row = app.store.messages(cid)[-1]
            return row.thinking, row.content, row.status

        pace.release()  # first token at t=0: no speed yet
        await wait_for(pilot, lambda: str(view.thinking.title) == "thinking… 1 tokens, 0 s")
        assert speed(app) == "" and row_text() == ("", "", "streaming")

        clock.advance(2.0)
        pace.release()  # one more token 2 s after the first
        await wait_for(pilot, lambda: speed(app) == "0.5 tok/s")
        assert str(view.thinking.title) == "thinking… 2 tokens, 2 s"
        assert row_text() == ("Step one. Step two. ", "", "streaming")  # half a second passed: saved

        pace.release()  # no time passed: shown, not saved again
        await wait_for(pilot, lambda: speed(app) == "1.0 tok/s")
        assert view.thinking.text == "".join(THINKING)
        assert row_text() == ("Step one. Step two. ", "", "streaming")

        clock.advance(1.0)
        pace.release()  # the answer begins: the block folds with the time it thought
        await wait_for(pilot, lambda: speed(app) == "1.0 tok/s" and view.content == ANSWER[0])
        assert view.thinking.collapsed and str(view.thinking.title) == "thought for 2 s (3 tokens)"
        assert row_text() == ("".join(THINKING), ANSWER[0], "streaming")

        pace.release()
        await wait_for(pilot, lambda: not app.chat.generating)
        assert speed(app) == "42.0 tok/s  ttft 0.25s"  # the engine's own figures once it finished
        assert row_text() == ("".join(THINKING), "".join(ANSWER), "complete")


class GpuMonitor(SystemMonitor):
    """The real monitor (psutil and nvidia-smi), counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.offloaded: list[bool] = []

    def read(self, gpu_offload: bool) -> MemoryReading:
        self.offloaded.append(gpu_offload)
        return super().read(gpu_offload)


def fake_nvidia_smi(folder: Path, mib: str) -> None:
    """An `nvidia-smi` on PATH printing `mib` for the memory.used query, as the real one does per GPU."""
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\n"
                      'case "$*" in *--query-gpu=memory.used*) printf "' + mib + '" ;; *) exit 9 ;; esac\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize(("gpu_layers", "expected"), [(0, None), (-1, "GPU 3072 MiB")])
async def test_memory_monitor_reads_ram_and_the_gpu_when_layers_are_offloaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gpu_layers: int, expected: str | None) -> None:
    from localr1.settings import Settings
    from localr1.store import ConversationStore

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_nvidia_smi(bin_dir, "1024\\n2048\\n")  # two GPUs
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def factory(model: str, load: LoadRequest, overrides: dict[str, object]) -> FakeEngine:
        engine = FakeEngine(load=LoadParams(context_size=load.context_size or 4096, gpu_layers=gpu_layers))
        engine.model = model
        return engine

    monitor = GpuMonitor()
    app = LocalR1App(store=ConversationStore(tmp_path / "c.db"), settings=Settings(), engine_factory=factory,
                     monitor=monitor, clock=FakeClock(), save_settings_to=tmp_path / "config.toml")
    async with app.run_test() as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: bool(monitor.offloaded) and monitor.offloaded[-1] == bool(gpu_layers),
                       timeout=5)
        await pilot.pause(0.05)
        label = str(app.status_bar.memory_label.render())
        ram = int(label.split()[1])
        assert label.startswith("RAM ") and 20 < ram < 4096  # this process's real resident memory, in MiB
        if expected is None:
            assert "GPU" not in label
        else:
            assert label.endswith(expected)


def test_a_broken_nvidia_smi_gives_no_gpu_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, "[N/A]\\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    reading = SystemMonitor().read(gpu_offload=True)
    assert reading.gpu_bytes is None and reading.rss_bytes > 0


async def test_context_used_is_shown_after_an_answer(make_app: AppMaker) -> None:
    factory = FakeFactory()
    app = make_app(factory=factory)
    async with app.run_test() as pilot:
        await send(pilot, "Hi")
        # the fake reports 100 prompt tokens and one token per piece (4 thinking + 5 answer)
        assert str(app.status_bar.context_label.render()) == "ctx 109/4.1k"
        assert app.status_bar.context_bar.progress == 109 and app.status_bar.context_bar.total == 4096
