"""Synthetic R1-shaped models made by the real pipeline (checkpoint → `convert` → llama.cpp's quantizer),
kept under /tmp between runs: the memory and speed benchmarks load them. Random weights, never in git.

    .venv/bin/python benchmarks/synthetic_models.py [--shapes small,medium,r1-1.5b] [--types Q4_K_M,Q8_0]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from quantize.convert import convert  # noqa: E402
from quantize.ladder.qtypes import QUANT_TYPES  # noqa: E402
from quantize.ladder.quantizer import QuantizeOptions, quantize_file  # noqa: E402
from tests.fixtures.checkpoints import SyntheticSpec, llama_spec, qwen2_spec, write_checkpoint  # noqa: E402

WORKDIR = Path("/tmp/localr1-bench-models")


@dataclass(frozen=True)
class BenchShape:
    """A named synthetic shape and the checkpoint spec that makes it."""

    name: str
    spec: SyntheticSpec


SHAPES = {
    s.name: s
    for s in (
        BenchShape("small", qwen2_spec(hidden_size=512, intermediate_size=1536, num_layers=8, num_heads=8,
                                       num_kv_heads=2, vocab_size=32000, seed=11)),
        BenchShape("medium", llama_spec(hidden_size=1024, intermediate_size=3072, num_layers=16, num_heads=16,
                                        num_kv_heads=4, vocab_size=64000, seed=12)),
        BenchShape("r1-1.5b", qwen2_spec(hidden_size=1536, intermediate_size=8960, num_layers=28, num_heads=12,
                                         num_kv_heads=2, vocab_size=151936, seed=13)),
    )
}


def base_model(shape: BenchShape, workdir: Path = WORKDIR) -> Path:
    """The F16 GGUF of a shape, converted from a streamed random checkpoint (built once)."""
    folder = workdir / shape.name
    base = folder / "F16.gguf"
    if base.exists():
        return base
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = folder / "checkpoint"
    write_checkpoint(ckpt, shape.spec, streamed=True)
    convert(ckpt, base, outtype="f16", force=True, durable=False)
    shutil.rmtree(ckpt)
    return base


def variant(shape_name: str, qtype: str, workdir: Path = WORKDIR) -> Path:
    """One quantized variant of a shape (F16 is the base itself), built once with llama.cpp's quantizer."""
    shape = SHAPES[shape_name]
    base = base_model(shape, workdir)
    if qtype == "F16":
        return base
    out = base.with_name(f"{qtype}.gguf")
    if not out.exists():
        temp = out.with_suffix(".partial")
        quantize_file(base, temp, QUANT_TYPES[qtype], QuantizeOptions())
        temp.replace(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--types", default="Q4_K_M,Q8_0")
    args = parser.parse_args()
    for shape in args.shapes.split(","):
        for qtype in args.types.split(","):
            started = time.perf_counter()
            path = variant(shape, qtype)
            seconds = time.perf_counter() - started
            print(f"{shape} {qtype}: {path} ({path.stat().st_size / 1e6:.0f} MB, {seconds:.0f} s)")


if __name__ == "__main__":
    main()
