"""The chat app at a heavy user's scale (issue 12): long conversations, big histories, memory, decode speed.

Every case runs in a fresh interpreter (benchmarks/scale_cases.py) on a real SQLite database the
benchmark writes (tests/tui/history.py), with the real app headless (`App.run_test()`), and prints
one Markdown table:

- open N: start on a conversation of N messages (long answers with code blocks and thinking);
  time from building the app to the first key handled, newest message shown, peak RSS;
- switch N: the same conversation opened from the sidebar, time to the next key handled;
- history C: start with C short conversations in the sidebar;
- keys: keypress latency while older messages of a 1,000-message conversation load as the user
  scrolls to the top;
- memory: process RSS after 5, 15 and 30 conversations of three long answers (fake engine), and
  the longest collector pause while streaming;
- decode: the app's decode speed on the demo model against `localr1 run` (interleaved pairs);
- tmux: the real `localr1 chat` in tmux opening a 1,000-message conversation, as a person sees it.

    .venv/bin/python benchmarks/tui_scale.py [--cases open,switch,history,keys,memory,decode,tmux]
        [--code OTHER_CHECKOUT]   (the "before" figures: that checkout's app, the same cases)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localr1.store import ConversationStore  # noqa: E402
from tests.tui.history import add_conversation, add_history  # noqa: E402

OPEN_SIZES = (50, 100, 200, 400, 1000)
HISTORY_SIZES = (100, 2000, 10000)
CHILD_TIMEOUT_S = 90
CASES = Path(__file__).resolve().parent / "scale_cases.py"
DECODE_PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a map. Use many paragraphs."


def code_dir() -> Path:
    """The checkout whose app is measured (--code; scale_harness.py reads the same variable)."""
    return Path(os.environ.get("LOCALR1_CODE", ROOT))


def code_env() -> dict[str, str]:
    """The environment of a child: the measured checkout's code first."""
    return {**os.environ, "PYTHONPATH": str(code_dir())}


def run_cli_decode(tokens: int, threads: int) -> dict[str, Any]:
    """One greedy answer from `localr1 run --json` on the demo; its stats."""
    thread_args = ["--threads", str(threads)] if threads else []
    out = subprocess.run([sys.executable, "-m", "localr1", "run", "--json", "--temperature", "0", "--max-tokens",
                          str(tokens), "--ctx", "4096", *thread_args, "-m", "demo", DECODE_PROMPT],
                         capture_output=True, text=True,
                         check=True, cwd=code_dir(), env=code_env()).stdout
    s = json.loads(out)["stats"]
    return {"tok_s": s["decode_tokens_per_s"], "tokens": s["generated_tokens"]}


def spawn(kind: str, db: Path, *extra: object, timeout: float = CHILD_TIMEOUT_S) -> dict[str, Any] | None:
    """Run one case in a fresh interpreter; None when it ran past the timeout."""
    try:
        out = subprocess.run([sys.executable, str(CASES), kind, str(db), *map(str, extra)], env=code_env(),
                             capture_output=True, text=True, timeout=timeout, check=True).stdout
    except subprocess.TimeoutExpired:
        return None
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def fresh_db(folder: Path, name: str) -> ConversationStore:
    path = folder / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return ConversationStore(path)


def cpu_median(done: list[dict[str, Any]]) -> str:
    """The median CPU seconds the app spent until interactive (what a busy machine does not inflate)."""
    return f"{statistics.median(r['cpu_s'] for r in done):.2f}"


def bench_open(folder: Path, runs: int, sizes: tuple[int, ...]) -> None:
    print("\n| messages | time to interactive (s), median | runs | app CPU s to interactive | newest shown | "
          "message views mounted (at first key / 2 s later) | widgets in transcript | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    baseline = fresh_db(folder, "empty")
    baseline.close()
    for label, n in [("0 (empty database)", 0)] + [(str(n), n) for n in sizes]:
        store = fresh_db(folder, f"open{n}")
        if n:
            add_history(store, 3)
            add_conversation(store, n)
        store.close()
        results = [spawn("open", store.path) for _ in range(runs)]
        done = [r for r in results if r is not None]
        if not done:
            print(f"| {label} | > {CHILD_TIMEOUT_S} (not interactive) | | | | | | |")
            continue
        times = [r["interactive_s"] for r in done]
        r = done[-1]
        print(f"| {label} | {statistics.median(times):.2f} | {', '.join(f'{t:.2f}' for t in times)}"
              f"{' + timeouts' if len(done) < runs else ''} | {cpu_median(done)} | {r['newest_shown']} | "
              f"{r['at_interactive']['views']} / {r['settled']['views']} | {r['settled']['widgets']} | "
              f"{statistics.median(x['peak_rss_mib'] for x in done):.0f} |")


def bench_switch(folder: Path, runs: int, sizes: tuple[int, ...]) -> None:
    print("\n| messages | open from the sidebar: time to next key (s), median | runs | app CPU s | views mounted |")
    print("|---|---|---|---|---|")
    for n in sizes:
        store = fresh_db(folder, f"switch{n}")
        add_conversation(store, n, at=time.time() - 10)
        add_conversation(store, 2, title="Newest", long=False)
        store.close()
        done = [r for r in (spawn("switch", store.path) for _ in range(runs)) if r is not None]
        if not done:
            print(f"| {n} | > {CHILD_TIMEOUT_S} | | | |")
            continue
        times = [r["interactive_s"] for r in done]
        print(f"| {n} | {statistics.median(times):.2f} | {', '.join(f'{t:.2f}' for t in times)} | "
              f"{cpu_median(done)} | {done[-1]['at_interactive']['views']} |")


def bench_history(folder: Path, runs: int, sizes: tuple[int, ...]) -> None:
    print("\n| conversations | time to interactive (s), median | runs | app CPU s to interactive | "
          "sidebar items (2 s later) | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        store = fresh_db(folder, f"history{n}")
        add_history(store, n)
        store.close()
        done = [r for r in (spawn("open", store.path) for _ in range(runs)) if r is not None]
        if not done:
            print(f"| {n} | > {CHILD_TIMEOUT_S} | | | | |")
            continue
        times = [r["interactive_s"] for r in done]
        print(f"| {n} | {statistics.median(times):.2f} | {', '.join(f'{t:.2f}' for t in times)} | "
              f"{cpu_median(done)} | {done[-1]['settled']['sidebar_items']} | "
              f"{statistics.median(x['peak_rss_mib'] for x in done):.0f} |")


def bench_keys(folder: Path, runs: int) -> None:
    store = fresh_db(folder, "keys")
    add_conversation(store, 1000)
    store.close()
    print("\n| typing | run | keys | median ms | p95 ms | max ms | older messages loaded in 10 s | views mounted |")
    print("|---|---|---|---|---|---|---|---|")
    patterns = (("words: 6 keys 120 ms apart, then 0.6 s", 0.12, 6), ("continuous: a key every 20 ms", 0.02, 0))
    for label, interval, burst in patterns:
        for i in range(runs):
            r = spawn("keys", store.path, 10.0, interval, burst)
            if r is None:
                print(f"| {label} | {i + 1} | timed out | | | | | |")
                continue
            print(f"| {label} | {i + 1} | {r['keys']} | {r['median_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} | "
                  f"{r['older_loaded']} | {r['mounted']['views']} |")


def bench_memory(folder: Path) -> None:
    store = fresh_db(folder, "memory")
    store.close()
    r = spawn("memory", store.path, 30, timeout=1800)
    if r is None:
        print("\nmemory: timed out")
        return
    rss = r["rss_mib"]
    pause = r["max_pause_ms"]
    print("\n| RSS MiB after 5 | 15 | 30 | 30 − 5 | full collections while streaming | longest full (ms) | "
          "young collections | longest young (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {rss['5']:.0f} | {rss['15']:.0f} | {rss['30']:.0f} | {rss['30'] - rss['5']:.0f} | "
          f"{r['full_collections']} | {pause['2']:.0f} | {r['young_collections']} | "
          f"{max(pause['0'], pause['1']):.0f} |")


def bench_decode(folder: Path, args: argparse.Namespace) -> None:
    """The app's decode speed against `localr1 run`, interleaved pairs on the demo model."""
    pairs, tokens, threads, app_threads = args.pairs, args.tokens, args.threads, args.app_threads
    refresh_hz, switch_ms = args.refresh_hz, args.switch_ms
    ratios, app_speeds, cli_speeds = [], [], []
    for i in range(pairs):
        store = fresh_db(folder, f"decode{i}")
        store.close()
        order = ("app", "cli") if i % 2 == 0 else ("cli", "app")
        got: dict[str, dict[str, Any]] = {}
        for side in order:
            if side == "app":
                res = spawn("decode", store.path, tokens, app_threads or threads, refresh_hz, switch_ms, timeout=300)
                if res is not None:
                    got["app"] = res
            else:
                got["cli"] = run_cli_decode(tokens, threads)
        if "app" not in got:  # llama.cpp's threads crawl when other processes take the cores
            print(f"  pair {i + 1}: the app ran past 300 s, left out", file=sys.stderr)
            continue
        app_speeds.append(got["app"]["tok_s"])
        cli_speeds.append(got["cli"]["tok_s"])
        ratios.append(got["app"]["tok_s"] / got["cli"]["tok_s"])
        print(f"  pair {i + 1}: app {got['app']['tok_s']:.1f} tok/s ({got['app']['tokens']} tokens), "
              f"run {got['cli']['tok_s']:.1f} tok/s ({got['cli']['tokens']} tokens)", file=sys.stderr)
    label = (f"threads {app_threads or threads or 'default'} (run: {threads or 'default'}), "
             f"refresh {refresh_hz or 'default'} Hz" + (f", GIL switch {switch_ms} ms" if switch_ms else ""))
    if not ratios:
        print(f"\ndecode ({label}): every pair ran past 300 s")
        return
    print(f"\n| app ({label}) tok/s | `localr1 run` tok/s | app / run (median of pairs) | ratios |")
    print("|---|---|---|---|")
    print(f"| {statistics.median(app_speeds):.1f} | {statistics.median(cli_speeds):.1f} | "
          f"{statistics.median(ratios):.3f} | {', '.join(f'{x:.3f}' for x in ratios)} |")


def bench_render_cpu(folder: Path, runs: int) -> None:
    """The UI's CPU per second of streaming at 100 tokens/s (the demo's pace), by render rate, interleaved."""
    rates = (30.0, 20.0, 12.0)
    got: dict[float, list[float]] = {r: [] for r in rates}
    for i in range(runs):
        for rate in rates if i % 2 == 0 else rates[::-1]:
            store = fresh_db(folder, f"cpu{i}-{rate}")
            store.close()
            r = spawn("render_cpu", store.path, rate, 100.0, timeout=300)
            if r is not None:
                got[rate].append(r["cpu_per_s"])
    print("\n| render rate | UI CPU seconds per second of streaming at 100 tokens/s, median | runs |")
    print("|---|---|---|")
    for rate in rates:
        print(f"| {rate:.0f} Hz | {statistics.median(got[rate]):.3f} | {', '.join(f'{x:.3f}' for x in got[rate])} |")


def bench_tmux(folder: Path, runs: int) -> None:
    """The real `localr1 chat` in a 120x40 tmux pane: until the newest answer and a typed key show."""
    if shutil.which("tmux") is None:
        print("\ntmux: not installed")
        return
    home = folder / "tmux-home"
    (home / "data").mkdir(parents=True, exist_ok=True)
    store = fresh_db(home / "data", "conversations")
    add_conversation(store, 1000)
    store.close()
    newest = "a0999"
    print("\n| run | newest answer on screen (s) | typed text on screen (s) |")
    print("|---|---|---|")
    for i in range(runs):
        sock = f"bench-{os.getpid()}-{i}"
        cmd = (f"exec env LOCALR1_HOME={shlex.quote(str(home))} TERM=xterm-256color"
               f" PYTHONPATH={shlex.quote(str(code_dir()))}"
               f" {shlex.quote(sys.executable)} -m localr1 chat --model demo")

        def tmux(*args: str, sock: str = sock) -> str:
            return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, check=False).stdout

        t0 = time.perf_counter()
        tmux("new-session", "-d", "-s", "b", "-x", "120", "-y", "40", cmd)
        shown = typed = float("nan")
        try:
            while time.perf_counter() - t0 < CHILD_TIMEOUT_S:
                screen = tmux("capture-pane", "-p", "-t", "b")
                if newest in screen and math.isnan(shown):
                    shown = time.perf_counter() - t0
                    tmux("send-keys", "-t", "b", "-l", "zqzq")
                if "zqzq" in screen:
                    typed = time.perf_counter() - t0
                    break
                time.sleep(0.02)
        finally:
            tmux("kill-server")
        print(f"| {i + 1} | {shown:.2f} | {typed:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="open,switch,history,keys,memory,decode,tmux")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="", help="comma-separated sizes for open, switch and history")
    parser.add_argument("--pairs", type=int, default=6, help="interleaved app/run pairs for decode")
    parser.add_argument("--tokens", type=int, default=300, help="tokens per decode run")
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads, app and run alike (0: default)")
    parser.add_argument("--refresh-hz", type=float, default=0, help="override the app's render rate (0: default)")
    parser.add_argument("--switch-ms", type=float, default=0, help="override the app's GIL switch interval")
    parser.add_argument("--app-threads", type=int, default=0, help="llama.cpp threads in the app only")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="measure the app of another checkout (copy tests/tui/history.py there)")
    args = parser.parse_args()
    os.environ["LOCALR1_CODE"] = str(args.code.resolve())
    cases = args.cases.split(",")
    sizes = tuple(int(x) for x in args.sizes.split(",")) if args.sizes else ()
    load = os.getloadavg()[0]
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, 1-min load {load:.2f} at start,"
          f" code {code_dir()}")
    with tempfile.TemporaryDirectory(prefix="localr1-scale-") as tmp:
        folder = Path(tmp)
        benches = {
            "open": lambda: bench_open(folder, args.runs, sizes or OPEN_SIZES),
            "switch": lambda: bench_switch(folder, args.runs, sizes or OPEN_SIZES),
            "history": lambda: bench_history(folder, args.runs, sizes or HISTORY_SIZES),
            "keys": lambda: bench_keys(folder, args.runs),
            "memory": lambda: bench_memory(folder),
            "decode": lambda: bench_decode(folder, args),
            "tmux": lambda: bench_tmux(folder, args.runs),
            "render_cpu": lambda: bench_render_cpu(folder, args.runs),
        }
        for case in cases:
            benches[case]()
            sys.stdout.flush()
    print(f"\n1-min load at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
