"""The headless app as benchmarks/tui_scale.py's cases drive it: built on a database, keys timed, widgets counted.

Imported in a fresh interpreter per case. `LOCALR1_CODE` (set by `tui_scale.py --code DIR`) puts another
checkout's `localr1` and `tests` first, so the same cases measure older code (that checkout needs
tests/tui/history.py: copy it there).
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if os.environ.get("LOCALR1_CODE"):
    sys.path.insert(0, os.environ["LOCALR1_CODE"])

from textual import events  # noqa: E402
from textual._time import get_time  # noqa: E402

from localr1.settings import Settings  # noqa: E402
from localr1.store import ConversationStore  # noqa: E402
from localr1.tui.app import LocalR1App  # noqa: E402
from localr1.tui.widgets.message_view import MessageView  # noqa: E402
from localr1.tui.widgets.prompt_input import PromptInput  # noqa: E402
from tests.tui.fake_engine import FakeFactory, FakeScript  # noqa: E402
from tests.tui.history import answer_text, thinking_text  # noqa: E402

CHILD_TIMEOUT_S = 90
HANDLED: list[tuple[float, float]] = []  # (perf_counter when handled, latency in s) of each "x" key


class TimedPromptInput(PromptInput):
    """Records when each "x" key reached the prompt and how long it waited."""

    async def _on_key(self, event: events.Key) -> None:
        await super()._on_key(event)
        if event.key == "x":
            HANDLED.append((time.perf_counter(), get_time() - event.time))


def peak_rss_mib() -> float:
    """The process's peak resident set (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_app(db: Path, factory: Any = None, settings: Settings | None = None) -> LocalR1App:
    """The real app on `db`, with the fake engine unless given a factory, and a timed prompt."""
    app = LocalR1App(store=ConversationStore(db), settings=settings or Settings(model="fake"),
                     engine_factory=factory or FakeFactory(), save_settings_to=db.with_suffix(".toml"),
                     export_dir=db.parent / "exports")
    app.prompt = TimedPromptInput()
    return app


async def key_handled(app: LocalR1App, timeout: float) -> float:
    """Post an "x" the way the terminal driver does; returns when the prompt handled it."""
    count = len(HANDLED)
    app.post_message(events.Key("x", "x"))
    deadline = time.perf_counter() + timeout
    while len(HANDLED) == count:
        if time.perf_counter() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.002)
    return HANDLED[-1][0]


def mounted(app: LocalR1App) -> dict[str, int]:
    """Message views and all widgets in the transcript, items in the sidebar."""
    return {"views": len(app.transcript.query(MessageView)), "widgets": len(app.transcript.query("*")),
            "sidebar_items": len(app.sidebar.children)}


def long_script() -> FakeScript:
    """About 300 words of reasoning and 400 of answer, as word tokens."""
    words = re.compile(r"\S+\s*")
    return FakeScript(thinking=words.findall(thinking_text(1) + "\n\n" + thinking_text(2)),
                      answer=words.findall(answer_text(1) + "\n\n" + answer_text(2)))


def real_engine_factory(threads: int = 0) -> Any:
    """The app's engine factory on the real demo engine, at `threads` llama.cpp threads (0: the default); in a
    child process (localr1/engine/isolated.py) when LOCALR1_BENCH_ISOLATED is set, for comparison."""
    from dataclasses import replace

    from localr1.engine.params import LoadRequest
    from localr1.loader import open_engine

    def factory(model: str, load: LoadRequest, overrides: dict[str, Any]) -> Any:
        engine = open_engine(model, replace(load, threads=threads) if threads else load, overrides)
        if os.environ.get("LOCALR1_BENCH_ISOLATED"):
            from localr1.engine.isolated import IsolatedEngine

            path, params, sampling = engine.info.path, engine.load_params, engine.sampling  # type: ignore[attr-defined]
            engine.close()
            return IsolatedEngine(path, params, sampling, probed=True)
        return engine

    return factory
