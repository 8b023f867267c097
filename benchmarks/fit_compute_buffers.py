"""Fit the compute-buffer formula to the sizes llama.cpp itself reports, and write the constants.

    .venv/bin/python benchmarks/fit_compute_buffers.py [--rows rows.json] [--write]

For nine shapes (the six R1 distills' widths and vocabularies, the demo's, two small ones), contexts from
512 to 32768, micro-batches of 128 and 512, without flash attention and with it (f16 and q8_0 KV), a
one-layer synthetic GGUF is loaded and the "CPU compute buffer size" line of llama.cpp's log is read (the
buffer does not depend on the number of layers: checked at 1, 2 and 4). The buffer is the peak of three
phases of the worst-case graph (see localr1/planner/compute_fit.py); each phase is linear in its terms, so
the fit alternates: assign every row to the phase the current coefficients make largest, then refit each
phase by least squares on its rows (trimmed: rows more than 2% above the first fit, where ggml's allocator
fragments the buffer, are left out and reported as the largest under-prediction).
`--write` rewrites localr1/planner/compute_fit.py.
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import json
import re
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import gguf
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localr1.planner.mix import mixed_tensors  # noqa: E402
from localr1.planner.shape import ModelShape  # noqa: E402
from localr1.planner.synthetic import write_synthetic_gguf  # noqa: E402

MiB = 2**20
SHAPES = {  # hidden, ffn, heads, kv heads, head dim, vocab
    "r1-qwen-1.5b": (1536, 8960, 12, 2, 128, 151936), "r1-qwen-7b": (3584, 18944, 28, 4, 128, 152064),
    "r1-llama-8b": (4096, 14336, 32, 8, 128, 128256), "r1-qwen-14b": (5120, 13824, 40, 8, 128, 152064),
    "r1-qwen-32b": (5120, 27648, 40, 8, 128, 152064), "r1-llama-70b": (8192, 28672, 64, 8, 128, 128256),
    "demo": (576, 1536, 9, 3, 64, 49152), "tiny": (256, 768, 4, 2, 64, 1000), "narrow": (1024, 4096, 16, 4, 64, 2000),
}
CONTEXTS = (512, 2048, 8192, 32768)
UBATCHES = (128, 512)
KV_MODES = (("f16", False), ("f16", True), ("q8_0", True))
_BUFFER = re.compile(r"CPU compute buffer size =\s*([\d.]+) MiB")
FEATURES = {
    "output": ("v_out", "h_out"),
    "attention": ("kq", "mask", "h_attn", "kv_attn"),
    "ffn": ("f_ffn", "h_ffn"),
}


def features(row: dict[str, Any]) -> dict[str, float]:
    """Every term of the formula for one measured row, in bytes."""
    h, f, heads, kv_heads, head_dim, vocab = row["shape"]
    ub, n_kv, fa = row["ubatch"], row["context"], row["flash"]
    return {
        "v_out": ub * vocab * 4, "h_out": ub * h * 4,
        "kq": 0.0 if fa else n_kv * ub * heads * 4, "mask": n_kv * ub * (2 if fa else 4),
        "h_attn": ub * h * 4, "kv_attn": ub * kv_heads * head_dim * 4,
        "f_ffn": ub * f * 4, "h_ffn": ub * h * 4,
    }


def measure_rows() -> list[dict[str, Any]]:
    """Load every configuration and read llama.cpp's reported compute buffer."""
    import llama_cpp
    import llama_cpp._logger as default_logger

    lines: list[str] = []
    callback = llama_cpp.llama_log_callback(lambda _l, text, _u: lines.append(text.decode(errors="replace")))
    sample = gguf.quants.quantize((0.02 * np.random.default_rng(0).standard_normal((64, 4096))).astype(np.float32),
                                  gguf.GGMLQuantizationType.Q8_0).tobytes()
    rows = []
    with tempfile.TemporaryDirectory(prefix="localr1-fit-") as tmp:
        for name, dims in SHAPES.items():
            h, f, heads, kv_heads, head_dim, vocab = dims
            shape = ModelShape("qwen2", 1, h, f, heads, kv_heads, head_dim, vocab, 131072, qkv_bias=True)
            path = write_synthetic_gguf(Path(tmp) / f"{name}.gguf", shape, mixed_tensors(shape, "Q8_0"),
                                        {gguf.GGMLQuantizationType.Q8_0: sample}, file_type=7)
            for context, ubatch, (kv, fa) in itertools.product(CONTEXTS, UBATCHES, KV_MODES):
                lines.clear()
                llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
                kv_id = llama_cpp.GGML_TYPE_F16 if kv == "f16" else llama_cpp.GGML_TYPE_Q8_0
                llm = llama_cpp.Llama(model_path=str(path), n_ctx=context, n_batch=512, n_ubatch=ubatch,
                                      flash_attn=fa, type_k=kv_id, type_v=kv_id, verbose=False)
                llama_cpp.llama_log_set(default_logger.llama_log_callback, ctypes.c_void_p(0))
                llm.close()
                found = [float(m.group(1)) for line in lines if (m := _BUFFER.search(line))]
                rows.append({"model": name, "shape": list(dims), "context": context, "ubatch": ubatch, "kv": kv,
                             "flash": fa, "compute_mib": found[-1]})
                print(json.dumps(rows[-1]), flush=True)
            path.unlink()
    return rows


def predict(coef: dict[str, float], row: dict[str, Any]) -> tuple[float, str]:
    """The formula's bytes for a row and the phase that gives them."""
    x = features(row)
    phases = {phase: sum(coef[k] * x[k] for k in keys) for phase, keys in FEATURES.items()}
    phase = max(phases, key=lambda p: phases[p])
    return phases[phase], phase


def fit(rows: list[dict[str, Any]], rounds: int = 10) -> dict[str, float]:
    """Alternate phase assignment and per-phase least squares, starting from the hand-derived formula."""
    coef = {"v_out": 1.0, "h_out": 2.0, "kq": 1.0, "mask": 1.0, "h_attn": 5.0, "kv_attn": 2.0,
            "f_ffn": 3.0, "h_ffn": 4.0}
    for _ in range(rounds):
        groups: dict[str, list[dict[str, Any]]] = {p: [] for p in FEATURES}
        for row in rows:
            groups[predict(coef, row)[1]].append(row)
        for phase, keys in FEATURES.items():
            members = groups[phase]
            if len(members) < len(keys) + 2:
                continue
            a = np.array([[features(r)[k] for k in keys] for r in members])
            b = np.array([r["compute_mib"] * MiB for r in members])
            used = np.asarray(a.any(axis=0), dtype=bool)
            solution, *_ = np.linalg.lstsq(a[:, used], b, rcond=None)
            # trimmed: the allocator's fragmentation makes a few rows larger; fit the rest, report those
            residual = np.abs(a[:, used] @ solution - b)
            keep = residual <= np.maximum(1 * MiB, 0.02 * b)
            if keep.sum() >= len(keys) + 2:
                solution, *_ = np.linalg.lstsq(a[keep][:, used], b[keep], rcond=None)
            for key, value in zip([k for k, u in zip(keys, used.tolist(), strict=True) if u], solution, strict=True):
                coef[key] = round(max(0.0, float(value)), 3)
    return coef


def report(coef: dict[str, float], rows: list[dict[str, Any]]) -> tuple[str, float]:
    """Errors of the fitted formula over all rows, and the largest under-prediction as a fraction."""
    errors = [(predict(coef, r)[0] / MiB - r["compute_mib"], r) for r in rows]
    worst_under = min(errors, key=lambda e: e[0])
    worst_over = max(errors, key=lambda e: e[0])
    relative = [e / r["compute_mib"] for e, r in errors]
    inside = sum(1 for e in relative if abs(e) <= 0.02)
    under = max(0.0, -min(relative))
    text = (f"{len(rows)} configurations; within 2%: {inside}; largest under-prediction "
            f"{worst_under[0]:.1f} MiB ({worst_under[1]['model']}, ctx {worst_under[1]['context']}, "
            f"ubatch {worst_under[1]['ubatch']}, {worst_under[1]['kv']}, FA {worst_under[1]['flash']}); largest "
            f"over-prediction {worst_over[0]:.1f} MiB; median |error| "
            f"{float(np.median([abs(e) for e, _ in errors])):.2f} MiB")
    return text, under


def write_module(coef: dict[str, float], summary: str, under: float) -> Path:
    """Rewrite localr1/planner/compute_fit.py with the fitted constants."""
    target = ROOT / "localr1" / "planner" / "compute_fit.py"
    text = target.read_text(encoding="utf-8")
    head = text.split("COEFFICIENTS", 1)[0]
    body = "COEFFICIENTS: dict[str, float] = {\n" + "".join(f'    "{k}": {v},\n' for k, v in coef.items()) + "}\n"
    body += "# the formula's largest under-prediction on the fit's grid, added to buffers on GPUs\n"
    body += f"FRAGMENTATION = {round(under + 0.005, 3)}\n"
    pieces = textwrap.wrap(summary, 100, drop_whitespace=False)
    body += "FIT_SUMMARY = (\n" + "".join(f"    {piece!r}\n" for piece in pieces) + ")\n"
    target.write_text(head + body, encoding="utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=Path, help="reuse measured rows from this JSON file (written if missing)")
    parser.add_argument("--write", action="store_true", help="rewrite localr1/planner/compute_fit.py")
    args = parser.parse_args()
    if args.rows and args.rows.exists():
        rows = json.loads(args.rows.read_text())
    else:
        rows = measure_rows()
        if args.rows:
            args.rows.write_text(json.dumps(rows))
    coef = fit(rows)
    summary, under = report(coef, rows)
    print(json.dumps(coef, indent=1))
    print(summary)
    if args.write:
        print(f"wrote {write_module(coef, summary, under)}")


if __name__ == "__main__":
    main()
