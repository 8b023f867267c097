"""Small waits and queries for Pilot tests."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable

from textual.pilot import Pilot

from localr1.tui.app import LocalR1App


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until condition() holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


async def ready(pilot: Pilot[None]) -> LocalR1App:
    """Wait until the model is loaded."""
    app = pilot.app
    assert isinstance(app, LocalR1App)
    await wait_for(pilot, lambda: app.engine is not None)
    return app


async def send(pilot: Pilot[None], text: str) -> LocalR1App:
    """Type a prompt, press Enter and wait for the answer to finish."""
    app = await ready(pilot)
    app.prompt.text = text
    await pilot.press("enter")
    await wait_for(pilot, lambda: not app.chat.generating)
    await pilot.pause(0.05)
    return app


def notifications(app: LocalR1App) -> list[str]:
    """Texts of the notifications shown so far."""
    return [n.message for n in app._notifications]


def screen_text(app: LocalR1App) -> str:
    """The characters on screen, line by line, read from the app's own SVG screenshot."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for x, y, text in re.findall(r'<text[^>]*\bx="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', app.export_screenshot(),
                                 re.S):
        rows.setdefault(float(y), []).append((float(x), html.unescape(text).replace("\xa0", " ")))
    return "\n".join("".join(t for _, t in sorted(row)) for _, row in sorted(rows.items()))


def killed_process() -> dict[str, float | int]:
    """The id and start time of a real process that was killed: the writer of an answer left streaming."""
    import subprocess
    import sys

    import psutil

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = psutil.Process(proc.pid).create_time()
    proc.kill()
    proc.wait(30)
    return {"pid": proc.pid, "started": started}
