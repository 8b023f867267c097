"""CPU seconds per decoded token, per thread, in the chat app and in `localr1 run` (issue 12).

Wall-clock decode ratios on a shared 2-core machine are noise; CPU time per token is not. Each side runs
in a fresh interpreter on the demo model with the same prompt and settings (greedy, context 4096):

- run: the engine's events consumed on the main thread, as `localr1 run --json` does;
- app: the real app headless (`App.run_test()`), the prompt submitted, until the answer is finished.

For every thread of the process it reads the kernel's accounting (/proc/self/task/TID: on-CPU ns, ns waiting
for a core, voluntary waits) before the prompt and after the answer, and prints per side the medians of:
CPU ms per token of the process and of the decode thread, the decode thread's blocked ms per token (asleep
while alive and not waiting for a core: in the app, mostly waiting for the GIL the UI thread holds), and the
UI thread's CPU ms per second of streaming. With one llama.cpp thread (the default here) no thread spins at
ggml's barriers, so these do not depend on how busy the machine is; tokens/s does.

    .venv/bin/python benchmarks/app_decode_cpu.py [--runs 5] [--tokens 300] [--threads 1] [--before OTHER_CHECKOUT]
        [--refresh-hz HZ] [--isolated]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a map. Use many paragraphs."


TICK_S = 1 / os.sysconf("SC_CLK_TCK")
BOOT_S = time.clock_gettime(time.CLOCK_BOOTTIME) - time.monotonic()  # monotonic -> since-boot offset


def thread_cpu_ns() -> dict[int, tuple[int, int, int, float]]:
    """Per thread of this process, by native id: on-CPU ns, ns runnable but waiting for a core (the load),
    voluntary context switches (waits: the GIL, a lock, a futex), and its start (monotonic s)."""
    out: dict[int, tuple[int, int, int, float]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                cpu, runq = (int(x) for x in f.read().split()[:2])
            with open(f"/proc/self/task/{tid}/status") as f:
                waits = int(next(line for line in f if line.startswith("voluntary_ctxt_switches")).split()[1])
            with open(f"/proc/self/task/{tid}/stat") as f:
                started = int(f.read().rsplit(")", 1)[1].split()[19]) * TICK_S - BOOT_S
            out[int(tid)] = (cpu, runq, waits, started)
        except (OSError, StopIteration):
            pass  # the thread ended meanwhile
    return out


def python_roles() -> dict[int, str]:
    """Native id -> role, for the threads Python knows about."""
    roles: dict[int, str] = {}
    for t in threading.enumerate():
        if t.native_id is None:
            continue
        if t is threading.main_thread():
            roles[t.native_id] = "main"
        else:
            roles[t.native_id] = "python:" + t.name.split("-")[0]
    return roles


class Meter:
    """Per-thread CPU between start() and stop(); threads that come and go in between are caught by polling."""

    def __init__(self) -> None:
        self.before: dict[int, tuple[int, int, int, float]] = {}
        self.last: dict[int, tuple[int, int, int, float]] = {}
        self.t0 = self.t1 = 0.0
        self.roles: dict[int, str] = {}
        self._done = threading.Event()
        self._poller: threading.Thread | None = None

    def _poll(self) -> None:
        while not self._done.wait(0.05):
            self.last.update(thread_cpu_ns())
            self.roles.update(python_roles())

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.before = thread_cpu_ns()
        self.roles = python_roles()
        self._poller = threading.Thread(target=self._poll, name="meter", daemon=True)
        self._poller.start()

    def stop(self) -> dict[str, float]:
        """Per role: CPU ms, "blocked" ms (neither running nor waiting for a core: asleep on the GIL, a lock or
        I/O) and voluntary waits, over the window."""
        self.last.update(thread_cpu_ns())
        self.t1 = time.monotonic()
        self.roles.update(python_roles())
        self._done.set()
        assert self._poller is not None
        self._poller.join()
        poller = self._poller.native_id
        by_role: dict[str, float] = {}
        for tid, (cpu, runq, waits, started) in self.last.items():
            if tid == poller:
                continue
            role = self.roles.get(tid, "llama.cpp")
            cpu0, runq0, waits0, _ = self.before.get(tid, (0, 0, 0, 0.0))
            cpu_ms, runq_ms = (cpu - cpu0) / 1e6, (runq - runq0) / 1e6
            alive_ms = (self.t1 - max(self.t0, started)) * 1e3
            for key, value in ((role, cpu_ms), (role + " blocked", max(0.0, alive_ms - cpu_ms - runq_ms)),
                               (role + " waits", waits - waits0)):
                by_role[key] = by_role.get(key, 0.0) + value
        return by_role


def child_run(tokens: int, threads: int) -> dict[str, Any]:
    from localr1.engine.events import Finished
    from localr1.engine.params import LoadRequest
    from localr1.engine.template import ChatMessage
    from localr1.loader import open_engine

    engine = open_engine("demo", LoadRequest(context_size=4096, threads=threads),
                         {"temperature": 0.0, "max_tokens": tokens})
    meter = Meter()
    meter.start()
    t0 = time.perf_counter()
    stats: dict[str, Any] = {}
    for event in engine.chat([ChatMessage("user", PROMPT)]):
        if isinstance(event, Finished):
            stats = event.stats.__dict__
    wall = time.perf_counter() - t0
    return {"ms": meter.stop(), "tokens": stats["generated_tokens"], "tok_s": stats["decode_tokens_per_s"],
            "wall_s": wall}


async def child_app(tokens: int, threads: int, db: Path, refresh_hz: float) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from scale_cases import set_refresh_hz

    set_refresh_hz(refresh_hz)
    from scale_harness import make_app, real_engine_factory

    from localr1.settings import Settings
    from localr1.tui.widgets.prompt_input import PromptInput

    settings = Settings(model="demo", temperature=0.0, max_tokens=tokens, context_size=4096)
    app = make_app(db, real_engine_factory(threads), settings)  # --isolated: LOCALR1_BENCH_ISOLATED
    loop = asyncio.get_running_loop()
    turns = [0]
    run_once = loop._run_once  # type: ignore[attr-defined]

    def counting_run_once() -> None:
        turns[0] += 1
        run_once()

    loop._run_once = counting_run_once  # type: ignore[attr-defined]
    meter = Meter()
    done = asyncio.Event()
    async with app.run_test(size=(120, 40)):
        while app.engine is None:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the start-up's own work (sidebar, first layout) is not the decode's
        original = app.chat._finish

        async def finish(outcome: Any) -> None:
            await original(outcome)
            done.set()

        app.chat._finish = finish  # type: ignore[method-assign,assignment]
        meter.start()
        turns[0] = 0
        t0 = time.perf_counter()
        app.prompt.post_message(PromptInput.Submitted(PROMPT))
        await done.wait()
        wall = time.perf_counter() - t0
        ms = meter.stop()
        ms["loop turns"] = turns[0]
        cid = app.chat.session.conversation_id
        row = app.store.conn.execute("SELECT stats FROM messages WHERE conversation_id = ? AND role = 'assistant'",
                                     (cid,)).fetchone()
    stats = json.loads(row[0])
    return {"ms": ms, "tokens": stats["generated_tokens"], "tok_s": stats["decode_tokens_per_s"], "wall_s": wall}


def spawn(side: str, tokens: int, threads: int, code: Path, refresh_hz: float = 0) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{ROOT}", "LOCALR1_CODE": str(code)}
    out = subprocess.run([sys.executable, __file__, "--child", side, "--tokens", str(tokens), "--threads", str(threads),
                          "--refresh-hz", str(refresh_hz)], env=env,
                         capture_output=True, text=True, check=True, timeout=600, cwd=code).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def figures(side: str, result: dict[str, Any]) -> dict[str, float]:
    """The summary of one run: CPU per token, the UI thread's CPU per second, the decode thread's blocked time."""
    ms, tokens, wall = result["ms"], result["tokens"], result["wall_s"]
    threads = [k for k in ms if " " not in k and k != "loop turns"]
    decode = "main" if side == "run" else max((k for k in threads if k.startswith("python:")), key=lambda k: ms[k])
    return {
        "tok_s": result["tok_s"],
        "process CPU ms/token": sum(ms[k] for k in threads) / tokens,
        "decode thread CPU ms/token": ms[decode] / tokens,
        "decode thread blocked ms/token": ms[decode + " blocked"] / tokens,
        "UI thread CPU ms/s": ms["main"] / wall if side != "run" else 0.0,
        "event-loop turns/s": ms.get("loop turns", 0.0) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1,
                        help="llama.cpp threads (1: no spinning at ggml's barriers, so CPU per token does not "
                             "depend on the load; 0: the default)")
    parser.add_argument("--refresh-hz", type=float, default=0, help="override the app's render rate (0: its own)")
    parser.add_argument("--isolated", action="store_true",
                        help="the app's engine in a child process (localr1/engine/isolated.py), for comparison")
    parser.add_argument("--before", type=Path, help="also measure another checkout's app (the code before a change)")
    parser.add_argument("--child", choices=("run", "app"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "run":
        print(json.dumps(child_run(args.tokens, args.threads)))
        return
    if args.child == "app":
        with tempfile.TemporaryDirectory(prefix="localr1-cpu-") as tmp:
            print(json.dumps(asyncio.run(child_app(args.tokens, args.threads, Path(tmp) / "c.db", args.refresh_hz))))
        return
    if args.isolated:
        os.environ["LOCALR1_BENCH_ISOLATED"] = "1"
    sides = [("run", "run", ROOT), ("app", "app", ROOT)]
    if args.before is not None:
        sides.append(("app (before)", "app", args.before.resolve()))
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, 1-min load {os.getloadavg()[0]:.2f}, "
          f"{args.tokens} tokens, llama.cpp threads {args.threads or 'default'}, {args.runs} interleaved rounds")
    got: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in sides}
    for i in range(args.runs):
        for label, kind, code in sides if i % 2 == 0 else sides[::-1]:
            r = figures(kind, spawn(kind, args.tokens, args.threads, code, args.refresh_hz))
            got[label].append(r)
            print(f"  {label}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()), file=sys.stderr)
    keys = list(next(iter(got.values()))[0])
    print("\n| side (median of runs) | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for label, runs in got.items():
        print(f"| {label} | " + " | ".join(f"{statistics.median(r[k] for r in runs):.2f}" for k in keys) + " |")
    for label, runs in got.items():
        if label != "run":
            extra = statistics.median(a["process CPU ms/token"] - b["process CPU ms/token"]
                                      for a, b in zip(runs, got["run"], strict=True))
            print(f"\n{label} − run, process CPU ms per token (median of rounds): {extra:.2f}")
    print(f"\n1-min load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
