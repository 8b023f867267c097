"""The speed model: decode is memory-bound, prompt processing compute-bound.

Decode time per token = for each device holding layers, the bytes it streams / its bandwidth for their
type (CPU: measured per ggml type, plus a measured cost per matrix row; GPU: the table's bandwidth x
efficiency), plus fixed costs per token and per layer, plus reading the KV cache at the current depth.
Prompt time per token = 2 x matrix weights per device / that device's FLOP/s (CPU: measured per type, plus
a measured cost per row and token) + attention at the prompt's mean depth (CPU: at its own measured rate) + a
fixed cost per layer; the last layer's FFN runs for the logits' token only, so a prompt token skips it.
Steady state: weights resident in RAM.
"""

from __future__ import annotations

from dataclasses import dataclass

from localr1.gpu_specs import EFFICIENCY, PROMPT_EFFICIENCY
from localr1.hardware import CPUSpeed, HardwareProfile
from localr1.planner.memory import kv_row_bytes, slot_devices
from localr1.planner.remote import exchange_seconds, is_remote
from localr1.planner.shape import ModelShape
from localr1.planner.weights import Part, WeightsLayout

GPU_LAYER_OVERHEAD_S = 25e-6  # kernel launches per layer and token on a GPU (a documented guess)
GPU_TOKEN_OVERHEAD_S = 0.4e-3  # per token: graph launch and the logits copy back
PROMPT_LENGTH = 512  # prompt speed is given for a prompt of this length
_KV_TYPE = {"f16": "F16", "bf16": "F16", "f32": "F16", "q8_0": "Q8_0", "q4_0": "Q4_0"}
# a type the calibration did not measure borrows the figure of a close kernel
_SIMILAR = {"F32": "F16", "BF16": "F16", "Q8_K": "Q8_0", "IQ4_NL": "Q4_0", "Q4_1": "Q4_0", "Q5_0": "Q5_K",
            "Q5_1": "Q5_K", "IQ3_S": "Q3_K", "IQ3_XXS": "Q3_K", "IQ2_S": "Q2_K", "IQ2_XS": "Q2_K"}


@dataclass(frozen=True)
class SpeedEstimate:
    """Predicted tokens per second: decoding at the start of an answer and with the context full, and
    processing a prompt."""

    decode_tps: float
    decode_tps_full: float
    prompt_tps: float


def _lookup(table: dict[str, float], type_name: str, default: float) -> float:
    if type_name in table:
        return table[type_name]
    similar = _SIMILAR.get(type_name)
    if similar is not None and similar in table:
        return table[similar]
    return default


def _cpu_stream_s(part: Part, cpu: CPUSpeed) -> float:
    """Reading the part's bytes at each type's rate, plus each type's cost per matrix row (a dot product's
    fixed work: it matters for narrow models, whose rows are short)."""
    fallback = 0.6 * cpu.ram_bandwidth
    return sum(size / _lookup(cpu.type_bandwidth, name, fallback) for name, size in part.bytes_by_type.items()) \
        + _rows_s(part, cpu.type_row_s)


def _rows_s(part: Part, row_s: dict[str, float]) -> float:
    return sum(rows * _lookup(row_s, name, 0.0) for name, rows in part.rows_by_type.items())


def attention_flops(shape: ModelShape, prompt_tokens: int) -> float:
    """One layer's attention FLOPs per token of a prompt: scores and weighted sum at the mean depth."""
    return 4 * shape.q_dim * prompt_tokens / 2


def _cpu_prompt_s(part: Part, cpu: CPUSpeed, attention: float) -> float:
    """Seconds per prompt token in one layer: each type's matrix FLOPs at that type's rate and cost per row, the
    attention's FLOPs at the measured attention rate (or the dominant type's, if not measured), fixed costs."""
    default = min(cpu.type_flops.values()) if cpu.type_flops else 1e10
    matrices = sum(2 * params / _lookup(cpu.type_flops, name, default) for name, params in part.params_by_type.items())
    if cpu.attention_flops > 0:
        attention_rate = cpu.attention_flops
    elif part.params_by_type:
        attention_rate = _lookup(cpu.type_flops, max(part.params_by_type, key=part.params_by_type.__getitem__), default)
    else:
        attention_rate = default
    return matrices + attention / attention_rate + _rows_s(part, cpu.type_prompt_row_s) + cpu.prompt_layer_overhead_s


def predict_speed(shape: ModelShape, weights: WeightsLayout, hardware: HardwareProfile, *, context: int,
                  kv_type: str = "f16", gpu_layers: tuple[int, ...] = ()) -> SpeedEstimate:
    """Tokens/s for this model and split on this hardware (its CPU speed must be known)."""
    cpu = hardware.cpu_speed
    if cpu is None:
        raise ValueError("the hardware profile has no CPU speed: measure it first")
    slots = slot_devices(shape.layers, gpu_layers)
    kv_token_layer = 2 * kv_row_bytes(shape.kv_dim, kv_type)  # K and V of one position in one layer
    decode_s, prompt_s, kv_full_s = cpu.token_overhead_s, 0.0, 0.0
    kv_bw = _lookup(cpu.type_bandwidth, _KV_TYPE.get(kv_type, "F16"), 0.6 * cpu.ram_bandwidth)
    attn_flops = attention_flops(shape, PROMPT_LENGTH)
    loopback = set(hardware.extra.get("loopback_workers", ()))
    for slot, device in enumerate(slots):
        is_output = slot == shape.layers
        part = (weights.streamed_output if is_output else weights.layers[slot])
        prompt_part = weights.prompt_last_layer if slot == shape.layers - 1 else part
        matrix_flops = 0.0 if is_output else 2 * prompt_part.params + attn_flops
        if device < 0 or is_remote(hardware.gpus[device]):  # a worker: assumed as fast as this CPU
            if device >= 0 and (slot == 0 or slots[slot - 1] != device):  # a new stretch: one exchange
                on_loopback = hardware.gpus[device].name in loopback
                decode_s += exchange_seconds(shape.hidden, loopback=on_loopback)
                prompt_s += exchange_seconds(shape.hidden, loopback=on_loopback, tokens=PROMPT_LENGTH) / PROMPT_LENGTH
            decode_s += _cpu_stream_s(part, cpu) + (0.0 if is_output else cpu.layer_overhead_s)
            if is_output:  # a prompt computes the logits of its last token only
                prompt_s += _cpu_stream_s(part, cpu) / PROMPT_LENGTH
            else:
                prompt_s += _cpu_prompt_s(prompt_part, cpu, attn_flops)
                kv_full_s += context * kv_token_layer / kv_bw
        else:
            gpu = hardware.gpus[device]
            bandwidth = gpu.bandwidth * EFFICIENCY
            decode_s += part.total / bandwidth + (0.0 if is_output else GPU_LAYER_OVERHEAD_S)
            prompt_s += matrix_flops / (gpu.flops * PROMPT_EFFICIENCY)
            if not is_output:
                kv_full_s += context * kv_token_layer / bandwidth
    if any(d >= 0 and not is_remote(hardware.gpus[d]) for d in slots):
        decode_s += GPU_TOKEN_OVERHEAD_S
    return SpeedEstimate(decode_tps=1 / decode_s, decode_tps_full=1 / (decode_s + kv_full_s),
                         prompt_tps=1 / max(prompt_s, 1e-9))
