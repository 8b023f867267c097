"""Predicted against measured GPU memory on a CUDA machine (written for one; no GPU where it was written).

    .venv/bin/python benchmarks/gpu_fit.py [--context 8192] [--markdown out.md]

Needs llama-cpp-python built with CUDA (CMAKE_ARGS="-DGGML_CUDA=on" ./setup.sh) and nvidia-smi. It writes
a 1.5B-shaped synthetic model (the R1 1.5B distill's shapes, Q4_K_M mix, valid random blocks) under /tmp,
asks the planner for the plan on the GPU it finds, then loads the model twice in fresh processes: with the
plan's GPU layers (all of them when they fit) and with half of them. For each load it records llama.cpp's
own buffer sizes per device (model, KV cache, compute: its log), and the process's GPU memory from
nvidia-smi (`--query-compute-apps`, i.e. NVML) after load and after a prompt that fills the context, and
compares them with the memory model's prediction per device.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localr1.hardware import probe, with_speed  # noqa: E402
from localr1.plan import Wishes, make_plan  # noqa: E402
from localr1.planner.candidates import file_variant  # noqa: E402
from localr1.planner.memory import MiB, estimate_memory  # noqa: E402
from localr1.planner.mix import mixed_tensors  # noqa: E402
from localr1.planner.shape import ModelShape  # noqa: E402

MODEL = Path("/tmp/localr1-bench-models/gpu-fit-r1-1.5b-Q4_K_M.gguf")
SHAPE = ModelShape("qwen2", 28, 1536, 8960, 12, 2, 128, 151936, 131072, qkv_bias=True)

CHILD = r"""
import ctypes, json, os, re, subprocess, sys
import llama_cpp
path, ctx, layers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def gpu_used():
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True).stdout
    return sum(int(used) * 2**20 for pid, used in (l.split(",") for l in out.strip().splitlines() if "," in l)
               if int(pid) == os.getpid())
lines = []
cb = llama_cpp.llama_log_callback(lambda l, t, u: lines.append(t.decode(errors="replace")))
llama_cpp.llama_log_set(cb, ctypes.c_void_p(0))
llm = llama_cpp.Llama(model_path=path, n_ctx=ctx, n_batch=512, n_gpu_layers=layers, flash_attn=True, verbose=False)
load = gpu_used()
n = llm.n_ctx() - 2
llm.eval([(7 + 31 * i) % 150000 + 5 for i in range(n)])
fill = gpu_used()
buffers = {f"{m.group(1)} {m.group(2)}": float(m.group(3)) for m in
           re.finditer(r"(\S+)\s+(compute|KV|output|model) buffer size =\s+([\d.]+) MiB", "".join(lines))}
print(json.dumps({"load": load, "fill": fill, "buffers": buffers}))
"""


def build_model() -> Path:
    """The 1.5B-shaped Q4_K_M synthetic model (written once)."""
    if MODEL.exists():
        return MODEL
    import gguf

    from localr1.planner.calibrate import quantized_sample
    from localr1.planner.synthetic import write_synthetic_gguf

    tensors = mixed_tensors(SHAPE, "Q4_K_M")
    types = {t.type for t in tensors} - {gguf.GGMLQuantizationType.F32}
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    return write_synthetic_gguf(MODEL, SHAPE, tensors, {t: quantized_sample(t) for t in types}, file_type=15)


def run(context: int, layers: int) -> dict[str, Any]:
    """One load in a fresh process (GPU memory is per process)."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(MODEL), str(context), str(layers)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", type=int, default=8192)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    from localr1.engine.devices import backend_devices, gpu_offload_supported

    machine = probe()
    if not machine.gpus or not gpu_offload_supported():
        raise SystemExit("no usable GPU: this needs nvidia-smi and a CUDA build of llama-cpp-python "
                         f"(devices seen by llama.cpp: {[d.name for d in backend_devices()]})")
    path = build_model()
    shape, variant = file_variant(path)
    from localr1.planner.calibrate import measure_cpu_speed

    hardware = with_speed(machine, measure_cpu_speed(("Q4_K", "Q6_K")))
    plan = make_plan("r1-1.5b-synthetic", shape, [variant], hardware, Wishes(context=args.context, kv_type="f16"))
    full = plan.config.n_gpu_layers
    rows = [f"GPU: {machine.gpus[0].name}, {machine.gpus[0].free / 2**30:.1f} GiB free; plan: {full} layers, "
            f"context {plan.config.context}", "",
            "| GPU layers | device | predicted MiB | llama.cpp buffers MiB | NVML after load MiB "
            "| NVML after fill MiB |",
            "|---|---|---|---|---|---|"]
    for layers in (full, full // 2):
        measured = run(plan.config.context, layers)
        est = estimate_memory(shape, variant.weights, context=plan.config.context, kv_type="f16",
                              flash_attention=True, gpu_layers=(layers,))
        gpu = est.gpus[0]
        cuda = sum(v for k, v in measured["buffers"].items() if k.startswith("CUDA0"))
        rows.append(f"| {layers} | GPU0 | {gpu.total / MiB:.0f} (weights {gpu.weights / MiB:.0f}, KV "
                    f"{gpu.kv_cache / MiB:.0f}, compute {gpu.compute / MiB:.0f}, context {gpu.overhead / MiB:.0f}) "
                    f"| {cuda:.0f} | {measured['load'] / MiB:.0f} | {measured['fill'] / MiB:.0f} |")
        rows.append(f"| {layers} | buffers | | " + ", ".join(f"{k} {v:.0f}" for k, v in measured["buffers"].items())
                    + " | | |")
    text = "\n".join(rows)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
