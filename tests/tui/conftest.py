"""An app wired to a fake engine, the real SQLite store and fixed clocks and memory figures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from localr1.settings import Settings
from localr1.store import ConversationStore
from localr1.tui.app import LocalR1App
from localr1.tui.monitor import MemoryReading, SystemMonitor
from tests.tui.fake_engine import FakeFactory, FakeScript


class FixedMonitor(SystemMonitor):
    """Always the same memory figure, so screenshots are stable."""

    def read(self, gpu_offload: bool) -> MemoryReading:
        return MemoryReading(256 * 2**20, None)


class FakeClock:
    """A clock that stands still until the test advances it: screenshots stay stable, and a test
    that steps it drives the live figures (tokens/s, thinking time) and the timed saves."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


AppMaker = Callable[..., LocalR1App]


@pytest.fixture
def make_app(tmp_path: Path) -> AppMaker:
    """Build an app; keyword arguments adjust the script, settings, database path or store."""

    def make(script: FakeScript | None = None, settings: Settings | None = None, db: Path | None = None, *,
             factory: FakeFactory | None = None, clock: Callable[[], float] | None = None,
             store: ConversationStore | None = None) -> LocalR1App:
        store = store or ConversationStore(db or tmp_path / "conversations.db")
        return LocalR1App(
            store=store,
            settings=settings or Settings(),
            engine_factory=factory or FakeFactory(script),
            monitor=FixedMonitor(),
            clock=clock or FakeClock(),
            save_settings_to=tmp_path / "config.toml",
            export_dir=tmp_path / "exports",
        )

    return make
