"""One case of benchmarks/tui_scale.py, run in a fresh interpreter; prints its figures as one JSON line.

    python benchmarks/scale_cases.py KIND DB [ARGS...]   (KIND: open, switch, keys, memory, decode, render_cpu)
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from scale_harness import (
    CHILD_TIMEOUT_S,
    HANDLED,
    key_handled,
    long_script,
    make_app,
    mounted,
    peak_rss_mib,
    real_engine_factory,
)
from textual import events

from localr1.settings import Settings
from localr1.tui.app import LocalR1App
from localr1.tui.widgets.message_view import MessageView
from localr1.tui.widgets.prompt_input import PromptInput
from tests.tui.fake_engine import FakeFactory

DECODE_PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a map. Use many paragraphs."


async def child_open(db: Path) -> dict[str, Any]:
    """Time from building the app to the first key handled, on a database built beforehand."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    app = make_app(db)
    async with app.run_test(size=(120, 40)):
        interactive = await key_handled(app, CHILD_TIMEOUT_S) - t0
        cpu = time.process_time() - cpu0
        at_interactive = mounted(app)
        newest = app.store.conn.execute("SELECT max(id) FROM messages").fetchone()[0]
        shown = any(v.message_id == newest for v in app.transcript.query(MessageView))
        await asyncio.sleep(2.0)
        settled = mounted(app)
    return {"interactive_s": interactive, "cpu_s": cpu, "newest_shown": shown, "peak_rss_mib": peak_rss_mib(),
            "at_interactive": at_interactive, "settled": settled}


async def child_switch(db: Path) -> dict[str, Any]:
    """Open the long conversation (second in the sidebar) from the sidebar; time to the next key."""
    from textual.widgets import ListView

    app = make_app(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        item = app.sidebar.children[1]
        t0, cpu0 = time.perf_counter(), time.process_time()
        # Straight to the app, as if bubbled: the key posted next waits for the app's handler to return.
        app.post_message(ListView.Selected(app.sidebar, item, 1))  # type: ignore[arg-type]
        interactive = await key_handled(app, CHILD_TIMEOUT_S) - t0
        cpu = time.process_time() - cpu0
        at_interactive = mounted(app)
        await asyncio.sleep(1.0)
    return {"interactive_s": interactive, "cpu_s": cpu, "peak_rss_mib": peak_rss_mib(),
            "at_interactive": at_interactive}


async def child_keys(db: Path, seconds: float, interval: float, burst: int) -> dict[str, Any]:
    """Scroll to the top every 0.5 s (older messages load) while keys are typed `interval` seconds apart,
    `burst` at a time with 0.6 s pauses in between (0: no pauses)."""
    app = make_app(db)
    async with app.run_test(size=(120, 40)):
        await key_handled(app, CHILD_TIMEOUT_S)
        await asyncio.sleep(0.5)
        first = [v.message_id for v in app.transcript.query(MessageView)][:1]
        HANDLED.clear()
        start = time.perf_counter()
        scrolled = 0.0
        typed = 0
        while time.perf_counter() - start < seconds:
            if time.perf_counter() - scrolled >= 0.5:
                app.transcript.scroll_home(animate=False)
                scrolled = time.perf_counter()
            app.post_message(events.Key("x", "x"))
            typed += 1
            await asyncio.sleep(0.6 if burst and typed % burst == 0 else interval)
        await asyncio.sleep(0.3)
        oldest = [v.message_id for v in app.transcript.query(MessageView)][:1]
        latencies = [lat * 1e3 for _, lat in HANDLED]
        loaded = app.store.conn.execute("SELECT count(*) FROM messages WHERE id < ? AND id >= ?",
                                        (first[0], oldest[0])).fetchone()[0] if first and oldest else 0
        at_end = mounted(app)
    return {"keys": len(latencies), "median_ms": statistics.median(latencies), "max_ms": max(latencies),
            "p95_ms": sorted(latencies)[int(len(latencies) * 0.95) - 1], "older_loaded": loaded,
            "mounted": at_end}


async def child_memory(db: Path, conversations: int) -> dict[str, Any]:
    """RSS after 5, 15, 30 conversations of three long answers; collector pauses while streaming."""
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started: dict[int, float] = {}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[info["generation"]] = time.perf_counter()
        elif info["generation"] in started and app.chat.generating:
            pauses[info["generation"]].append((time.perf_counter() - started.pop(info["generation"])) * 1e3)

    app = make_app(db, FakeFactory(long_script()))
    process = psutil.Process()
    rss: dict[int, float] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        while app.engine is None:
            await pilot.pause(0.01)
        for c in range(1, conversations + 1):
            await app.action_new_chat()
            for a in range(3):
                app.prompt.post_message(PromptInput.Submitted(f"Question {c}.{a}"))
                while not app.chat.generating:
                    await asyncio.sleep(0.005)
                if c == 1 and a == 0:
                    gc.callbacks.append(on_gc)
                while app.chat.generating:
                    await asyncio.sleep(0.01)
            if c in (5, 15, 30):
                await pilot.pause(0.5)
                rss[c] = process.memory_info().rss / 2**20
        gc.callbacks.remove(on_gc)
        mounted_views = len(app.transcript.query(MessageView))
    return {"rss_mib": rss, "max_pause_ms": {g: max(p, default=0.0) for g, p in pauses.items()},
            "full_collections": len(pauses[2]), "young_collections": len(pauses[0]) + len(pauses[1]),
            "views_mounted_at_end": mounted_views}


def set_refresh_hz(refresh_hz: float) -> None:
    """Override the app's render rate (0: keep it)."""
    from localr1.tui import chat

    if refresh_hz:
        chat.refresh_interval = lambda _load: 1 / refresh_hz  # type: ignore[attr-defined,assignment]


async def stream_one(app: LocalR1App, prompt: str) -> None:
    """Wait for the engine, submit `prompt`, wait until its answer is finished."""
    while app.engine is None:
        await asyncio.sleep(0.01)
    app.prompt.post_message(PromptInput.Submitted(prompt))
    while not app.chat.generating:
        await asyncio.sleep(0.005)
    while app.chat.generating:  # seldom: 50 wake-ups a second would be the benchmark's own cost in the app
        await asyncio.sleep(0.25)


async def child_decode_app(db: Path, tokens: int, threads: int, refresh_hz: float,
                           switch_ms: float) -> dict[str, Any]:
    """One greedy answer in the headless app with the real engine on the demo; the stored stats."""
    if switch_ms:
        sys.setswitchinterval(switch_ms / 1000)
    set_refresh_hz(refresh_hz)
    settings = Settings(model="demo", temperature=0.0, max_tokens=tokens, context_size=4096)
    app = make_app(db, real_engine_factory(threads), settings)  # in a child with LOCALR1_BENCH_ISOLATED
    async with app.run_test(size=(120, 40)):
        while app.engine is None:
            await asyncio.sleep(0.01)
        if os.environ.get("LOCALR1_BENCH_NICE"):  # the UI thread yields the cores to a child engine's threads
            os.nice(int(os.environ["LOCALR1_BENCH_NICE"]))
        await stream_one(app, DECODE_PROMPT)
        cid = app.chat.session.conversation_id
        assert cid is not None
        stats = app.store.conn.execute("SELECT stats FROM messages WHERE conversation_id = ? AND role = 'assistant'",
                                       (cid,)).fetchone()[0]
    s = json.loads(stats)
    return {"tok_s": s["decode_tokens_per_s"], "tokens": s["generated_tokens"]}


async def child_render_cpu(db: Path, refresh_hz: float, tokens_per_s: float) -> dict[str, Any]:
    """CPU seconds the app uses per second while a fake model streams at a local model's pace."""
    set_refresh_hz(refresh_hz)
    script = long_script()
    script.delay_s = 1 / tokens_per_s  # the fake engine sleeps: what is measured is the UI's own work
    app = make_app(db, FakeFactory(script))
    async with app.run_test(size=(120, 40)) as pilot:
        while app.engine is None:
            await pilot.pause(0.01)
        await pilot.pause(0.5)
        app.prompt.post_message(PromptInput.Submitted("Go"))
        while not app.chat.generating:
            await asyncio.sleep(0.005)
        wall, cpu = time.perf_counter(), time.process_time()
        while app.chat.generating:
            await asyncio.sleep(0.02)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"cpu_per_s": cpu / wall, "seconds": wall}


def main(argv: list[str]) -> None:
    kind, db = argv[0], Path(argv[1])
    extra = [float(a) for a in argv[2:]]
    runners = {
        "open": lambda: child_open(db),
        "switch": lambda: child_switch(db),
        "keys": lambda: child_keys(db, extra[0], extra[1], int(extra[2])),
        "memory": lambda: child_memory(db, int(extra[0])),
        "decode": lambda: child_decode_app(db, int(extra[0]), int(extra[1]), extra[2], extra[3]),
        "render_cpu": lambda: child_render_cpu(db, extra[0], extra[1]),
    }
    print(json.dumps(asyncio.run(runners[kind]())))


if __name__ == "__main__":
    main(sys.argv[1:])
