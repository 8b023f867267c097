"""What an RPC worker costs per token: the demo model with 0, 1 or all of its layers on a worker on
loopback, greedy decode, interleaved runs, medians.

The network cost per exchange is (time per token with one layer on the worker) - (time per token with
none): one layer of the 135M demo is ~0.1 ms of compute, so the difference is the RPC exchange itself.
Worker and client each get one thread (on a 2-core machine more threads only fight over the cores).
The engine runs in this process: a worker dying here aborts the benchmark, which is fine for a benchmark.

    .venv/bin/python benchmarks/workers.py [--runs 5] [--tokens 64]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time

from localr1.engine import ChatMessage, Finished, LoadParams, SamplingParams
from localr1.engine.engine import Engine
from localr1.registry import resolve_model
from localr1.workers import parse_endpoint, probe_worker

PROMPT = "Write a long story about a lighthouse keeper and a storm."


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_worker(port: int) -> subprocess.Popen[bytes]:
    """A `localr1 worker` with one thread on loopback, once it answers."""
    proc = subprocess.Popen([sys.executable, "-m", "localr1", "worker", "--port", str(port), "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    probe_worker(parse_endpoint(f"127.0.0.1:{port}"))
    return proc


def decode_tps(worker: str, layers: int, tokens: int) -> float:
    """Decode tokens/s with `layers` of the demo's slots on the worker."""
    load = LoadParams(context_size=1024, threads=1, seed=1, gpu_layers=layers,
                      workers=(worker,) if layers else ())
    engine = Engine(resolve_model("demo").path, load,
                    SamplingParams(temperature=0.0, top_p=1.0, max_tokens=tokens, seed=1))
    try:
        final = None
        for event in engine.chat([ChatMessage("user", PROMPT)]):
            if isinstance(event, Finished):
                final = event
        assert final is not None
        return final.stats.decode_tokens_per_s
    finally:
        engine.close()


def main() -> None:
    """Print the table for RESULTS.md."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    port = free_port()
    worker = start_worker(port)
    endpoint = f"127.0.0.1:{port}"
    cases = {"local (0 slots on the worker)": 0, "1 slot on the worker": 1, "all 31 slots on the worker": 31}
    results: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for _ in range(args.runs):
            for name, layers in cases.items():
                results[name].append(decode_tps(endpoint, layers, args.tokens))
    finally:
        worker.terminate()
        worker.wait()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.runs} runs, "
          f"{args.tokens} tokens, medians")
    print("| case | decode tokens/s | ms per token |")
    print("|---|---|---|")
    medians = {name: statistics.median(v) for name, v in results.items()}
    for name, tps in medians.items():
        print(f"| {name} | {tps:.1f} | {1000 / tps:.2f} |")
    local, one = medians["local (0 slots on the worker)"], medians["1 slot on the worker"]
    print(f"\nexchange with one worker: {1000 / one - 1000 / local:.2f} ms per token")


if __name__ == "__main__":
    main()
