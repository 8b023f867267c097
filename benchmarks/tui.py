"""TUI responsiveness: streamed tokens/s the app renders, keypress latency while streaming, startup time.

A fake engine (tests/tui/fake_engine.py) emits reasoning and a Markdown answer as fast as it can, so
the figures are the UI's own ceiling. Run headless:

    .venv/bin/python benchmarks/tui.py [--tokens 4000] [--runs 5] [--existing 400]

--existing N streams into a conversation that already holds N long messages (issue 12).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textual import events
from textual._time import get_time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localr1.engine.events import Event, Finished  # noqa: E402
from localr1.settings import Settings  # noqa: E402
from localr1.store import ConversationStore  # noqa: E402
from localr1.tui.app import LocalR1App  # noqa: E402
from localr1.tui.widgets.prompt_input import PromptInput  # noqa: E402
from tests.tui.fake_engine import FakeFactory, FakeScript  # noqa: E402
from tests.tui.history import add_conversation  # noqa: E402

LATENCIES: list[float] = []


class TimedPromptInput(PromptInput):
    """Records how long each key waited before the input handled it."""

    async def _on_key(self, event: events.Key) -> None:
        await super()._on_key(event)
        if event.key == "x":
            LATENCIES.append(get_time() - event.time)


WORDS = ("the", "sum", "of", "two", "numbers", "is", "even", "when", "both", "are", "odd", "so", "we", "check",
         "each", "case", "carefully", "and", "then", "compute", "result", "with", "`n % 2`", "**parity**")


def prose(n: int, seed: int) -> list[str]:
    """n word tokens of prose, a sentence break every 12."""
    return [WORDS[(seed + i * 7) % len(WORDS)] + (". " if i % 12 == 11 else " ") for i in range(n)]


def dense_tokens(n: int) -> list[str]:
    """A stress case: a list and a code fence every 16 tokens (many more blocks than real answers)."""
    pattern = ["The ", "answer ", "uses ", "**bold** ", "and ", "`code`. ", "\n\n- item ", "one\n- item ",
               "two\n\n", "```python\n", "def f(x):\n", "    return x * 2\n", "```\n\n", "More ", "prose ", "here. "]
    return [pattern[i % len(pattern)] for i in range(n)]


def reasoning_tokens(n: int) -> list[str]:
    """R1-style thinking: paragraphs of about 80 tokens."""
    out: list[str] = []
    while len(out) < n:
        out += [*prose(79, len(out)), "\n\n"]
    return out[:n]


def answer_tokens(n: int) -> list[str]:
    """An R1-style answer: a heading, paragraphs, a list and a code block in every ~200 tokens."""
    section = (["## Step\n\n"] + prose(60, 1) + ["\n\n"] + ["- ", *prose(10, 2), "\n", "- ", *prose(10, 3), "\n",
               "- ", *prose(10, 4), "\n\n", "```python\n"] + ["x = compute(n)\n"] * 8 + ["```\n\n"]
               + prose(60, 5) + ["\n\n"])
    out: list[str] = []
    while len(out) < n:
        out += section
    return out[:n]


async def stream_once(tokens: int, db: Path, dense: bool = False,
                      existing: int = 0) -> tuple[float, float, float, float]:
    """(UI tokens/s, producer tokens/s, median and max keypress latency in ms) for one streamed answer."""
    answer = dense_tokens if dense else answer_tokens
    if existing:
        seed = ConversationStore(db)
        add_conversation(seed, existing)
        seed.close()
    script = FakeScript(thinking=reasoning_tokens(tokens // 2), answer=answer(tokens - tokens // 2))
    factory = FakeFactory(script)
    app = LocalR1App(store=ConversationStore(db), settings=Settings(), engine_factory=factory,
                     save_settings_to=db.with_suffix(".toml"))
    app.prompt = TimedPromptInput()
    produced_at: list[float] = []
    original_chat = None
    LATENCIES.clear()
    async with app.run_test(size=(120, 40)) as pilot:
        while app.engine is None:
            await pilot.pause(0.01)
        engine = app.engine
        original_chat = engine.chat

        def timed_chat(*args: Any, **kwargs: Any) -> Iterator[Event]:
            for event in original_chat(*args, **kwargs):
                if isinstance(event, Finished):
                    produced_at.append(time.perf_counter())
                yield event

        engine.chat = timed_chat  # type: ignore[method-assign]
        started = time.perf_counter()
        app.prompt.post_message(PromptInput.Submitted("Go"))
        while not app.chat.generating:
            await asyncio.sleep(0.001)
        while app.chat.generating or app.chat._turn is not None:
            # Typed while streaming, the way a terminal driver delivers keys; TimedPromptInput times them.
            app.post_message(events.Key("x", "x"))
            await asyncio.sleep(0.05)
        finished = time.perf_counter()
        await pilot.pause(0.2)  # let the last keys be handled before the app closes
    producer = produced_at[0] - started if produced_at else float("nan")
    latency = statistics.median(LATENCIES) * 1e3 if LATENCIES else float("nan")
    worst = max(LATENCIES) * 1e3 if LATENCIES else float("nan")
    return tokens / (finished - started), tokens / producer, latency, worst


def startup_seconds() -> float:
    """A fresh interpreter: import the app, mount it headless with a model-less factory, until interactive."""
    code = (
        "import time; t0 = time.perf_counter()\n"
        "import asyncio, tempfile, pathlib, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from localr1.tui.app import LocalR1App\n"
        "from localr1.store import ConversationStore\n"
        "from localr1.settings import Settings\n"
        "from tests.tui.fake_engine import FakeFactory\n"
        "async def main():\n"
        "    d = pathlib.Path(tempfile.mkdtemp())\n"
        "    app = LocalR1App(store=ConversationStore(d / 'c.db'), settings=Settings(),\n"
        "                     engine_factory=FakeFactory(), save_settings_to=d / 'c.toml')\n"
        "    async with app.run_test() as pilot:\n"
        "        while app.focused is not app.prompt:\n"
        "            await pilot.pause(0.005)\n"
        "        print(time.perf_counter() - t0)\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    """Run the streaming and startup measurements and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dense", action="store_true", help="stress content: a list and a fence every 16 tokens")
    parser.add_argument("--existing", type=int, default=0, help="stream into a conversation of this many messages")
    args = parser.parse_args()
    ui, producer, latency, worst = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            u, p, lat, w = asyncio.run(stream_once(args.tokens, Path(tmp) / f"run{i}.db", args.dense, args.existing))
            ui.append(u)
            producer.append(p)
            latency.append(lat)
            worst.append(w)
    startups = [startup_seconds() for _ in range(args.runs)]
    kind = "dense stress Markdown" if args.dense else "R1-style Markdown"
    into = f", into a conversation of {args.existing} messages" if args.existing else ""
    print(f"{args.runs} runs, {args.tokens} tokens each (half thinking, half {kind} answer{into}), headless 120x40")
    print("| metric | median | runs |")
    print("|---|---|---|")
    print(f"| streamed tokens/s rendered by the TUI (send → final render) | {statistics.median(ui):.0f} | "
          f"{', '.join(f'{x:.0f}' for x in ui)} |")
    print(f"| fake engine tokens/s during the same runs (never waits for the UI) | "
          f"{statistics.median(producer):.0f} | {', '.join(f'{x:.0f}' for x in producer)} |")
    print(f"| keypress latency while streaming (ms, median of each run) | {statistics.median(latency):.1f} | "
          f"{', '.join(f'{x:.1f}' for x in latency)} |")
    print(f"| worst keypress latency while streaming (ms) | {statistics.median(worst):.1f} | "
          f"{', '.join(f'{x:.1f}' for x in worst)} |")
    print(f"| startup to interactive, imports included, model load excluded (s) | "
          f"{statistics.median(startups):.2f} | {', '.join(f'{x:.2f}' for x in startups)} |")


if __name__ == "__main__":
    main()
