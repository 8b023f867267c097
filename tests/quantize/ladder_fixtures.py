"""Shared fixtures of the ladder, importance-matrix and evaluation tests (import them into a test module).

Import the `*_fixture` functions into a test module to use the fixtures they name.
The real-weights base is the demo model (SmolLM2-135M, Q4_1) dequantized to F16 by llama.cpp's quantizer; the
ladders built from it are session-scoped, so the slow steps run once per test session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from quantize.ladder import LadderOptions, LadderResult, build_ladder
from quantize.ladder.qtypes import QUANT_TYPES, parse_types
from quantize.ladder.quantizer import QuantizeOptions, quantize_file
from quantize.quality.evaluate import EvalOptions, ModelQuality, QualityReport, evaluate_ladder

THREADS = 2
FAST_EVAL = EvalOptions(threads=THREADS, speed_tokens=8, speed_runs=1)
DEMO_TYPES = "Q8_0,Q4_K_M,IQ4_XS,Q2_K"


@dataclass
class BuiltLadder:
    """A ladder and its measured report."""

    result: LadderResult
    report: QualityReport

    def row(self, name: str) -> ModelQuality:
        """The report row of one type."""
        return next(v for v in self.report.variants if v.name == name)


def make_f16_base(source: Path, dest: Path) -> Path:
    """Dequantize a GGUF to F16 with llama.cpp (the real-weights base of the quality tests)."""
    quantize_file(source, dest, QUANT_TYPES["F16"], QuantizeOptions(threads=THREADS, allow_requantize=True))
    return dest


def ladder_options(types: str, **changes: object) -> LadderOptions:
    """LadderOptions for tests: two threads, given types, any other field changed."""
    base = {"types": parse_types(types), "quantize": QuantizeOptions(threads=THREADS)}
    return LadderOptions(**{**base, **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="session", name="demo_f16")
def demo_f16_fixture(demo_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo model's weights as an F16 GGUF."""
    return make_f16_base(demo_path, tmp_path_factory.mktemp("base") / "demo-F16.gguf")


@pytest.fixture(scope="session", name="demo_ladder")
def demo_ladder_fixture(demo_f16: Path, tmp_path_factory: pytest.TempPathFactory) -> BuiltLadder:
    """Q8_0, Q4_K_M, IQ4_XS and Q2_K of the demo base, with the importance matrix, measured."""
    out = tmp_path_factory.mktemp("ladder")
    result = build_ladder(demo_f16, out, ladder_options(DEMO_TYPES))
    return BuiltLadder(result, evaluate_ladder(out, FAST_EVAL))


@pytest.fixture(scope="session", name="demo_ladder_without_imatrix")
def demo_ladder_without_imatrix_fixture(demo_f16: Path, tmp_path_factory: pytest.TempPathFactory) -> BuiltLadder:
    """Q4_K_M and IQ4_XS of the same base without an importance matrix, measured."""
    out = tmp_path_factory.mktemp("ladder-noimatrix")
    result = build_ladder(demo_f16, out, ladder_options("Q4_K_M,IQ4_XS", use_imatrix=False))
    return BuiltLadder(result, evaluate_ladder(out, FAST_EVAL))


def run_cli(argv: Sequence[str]) -> int:
    """Run `localr1 ARGV` in this process through the real entry point (its own error reporting)."""
    from localr1.cli import main

    return main(list(argv))


def files_in(directory: Path) -> dict[str, int]:
    """Every file under a directory (hidden ones included) with its size."""
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): p.stat().st_size for p in sorted(directory.rglob("*")) if p.is_file()}
