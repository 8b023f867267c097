"""How long `localr1 models` takes with three R1 7B headers on disk: every header read (no cache, as before the
header cache) against a warm cache, in interleaved runs; medians.

    python benchmarks/models_listing.py --runs 5

Two figures each way: the discovery scan alone (in this process) and the whole command (a fresh process, as a user
runs it). The headers are the real DeepSeek-R1-Distill-Qwen-7B header with no tensors (tests/fixtures/r1_header.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from localr1.discovery import scan  # noqa: E402
from localr1.discovery.header_cache import cache_path  # noqa: E402
from localr1.registry import load_registry  # noqa: E402
from tests.fixtures.r1_header import r1_header_part, vocab_only_copy  # noqa: E402


def _setup(home: Path, copies: int) -> Path:
    folder = home / "gguf"
    folder.mkdir(parents=True)
    first = vocab_only_copy(r1_header_part(), folder / "r1-0.gguf")
    for i in range(1, copies):
        shutil.copyfile(first, folder / f"r1-{i}.gguf")
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text(f'model_folders = ["{folder}"]\n', encoding="utf-8")
    return folder


def _scan_s(folder: Path, cached: bool) -> float:
    if not cached:
        cache_path().unlink(missing_ok=True)
    start = time.perf_counter()
    found = scan(load_registry().values(), [folder])
    elapsed = time.perf_counter() - start
    assert len(found.models) >= 3 and not found.warnings, found.warnings
    return elapsed


def _command_s(cached: bool) -> float:
    if not cached:
        cache_path().unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "localr1", "models", "--json"], check=True, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ.update(LOCALR1_HOME=str(home), HF_HUB_CACHE=str(home / "hf"), OLLAMA_MODELS=str(home / "ollama"),
                          LOCALR1_LMSTUDIO_MODELS=str(home / "lmstudio"))
        folder = _setup(home, args.copies)
        _scan_s(folder, cached=False)  # page cache warm for both
        times: dict[str, list[float]] = {"scan, no cache": [], "scan, cached": [],
                                         "command, no cache": [], "command, cached": []}
        for _ in range(args.runs):  # interleaved: a busy moment costs both sides alike
            times["scan, no cache"].append(_scan_s(folder, cached=False))
            times["scan, cached"].append(_scan_s(folder, cached=True))
            times["command, no cache"].append(_command_s(cached=False))
            _scan_s(folder, cached=False)  # so the cached command finds a full cache
            times["command, cached"].append(_command_s(cached=True))
    print(f"{args.copies} R1 7B headers, {args.runs} interleaved runs each (median, min-max in seconds)")
    for name, values in times.items():
        print(f"  {name:18s} {statistics.median(values):7.3f}  ({min(values):.3f}-{max(values):.3f})")
    for what in ("scan", "command"):
        ratio = statistics.median(times[f"{what}, no cache"]) / statistics.median(times[f"{what}, cached"])
        print(f"  {what}: cached is {ratio:.1f}x faster")


if __name__ == "__main__":
    main()
