"""The memory model: weights, KV cache, compute buffers and runtime overhead on each device.

llama.cpp facts it follows (0.3.36): the context is rounded up to a multiple of 256; `n_gpu_layers` counts
the output head as the last of n_layer + 1 slots and offloads from the end (the head first); the token
embedding stays on the CPU; each layer's KV cache lives with the layer; weights of some types are repacked
into an anonymous buffer on the CPU (their file pages stay mapped but can be reclaimed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from localr1.planner.compute_fit import COEFFICIENTS, FRAGMENTATION
from localr1.planner.shape import ModelShape
from localr1.planner.weights import WeightsLayout

CONTEXT_PAD = 256
DEFAULT_UBATCH = 512
MiB = 2**20
# bytes per element of each KV cache type (blocks of 32 for the quantized ones)
KV_BYTES = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
# Measured on this machine by benchmarks/memory_model.py (--calibrate): the Python process's anonymous memory
# with localr1's engine and llama.cpp imported; the resident pages of Python and the shared libraries once a
# model is loaded (clean, shared and reclaimable; the kernel maps whole page-cache folios, so the same files
# showed 22 to 30 MB depending on how they entered the cache); llama.cpp's vocabulary structures per token and
# per BPE merge (fitted on vocab-only loads of the real R1 and demo vocabularies and of synthetic ones with few
# merges); a model's and a context's own allocations.
PROCESS_ANON = int(24.6 * MiB)
LIBRARY_PAGES = 22 * MiB
VOCAB_BYTES_PER_TOKEN = 175
VOCAB_BYTES_PER_MERGE = 124
MODEL_FIXED = 7 * MiB
# A CUDA/ROCm/Metal context and its libraries' workspaces (cuBLAS...) on each GPU: a documented guess,
# to be checked by benchmarks/gpu_fit.py on a GPU machine.
GPU_CONTEXT = 400 * MiB


def padded_context(context: int) -> int:
    """The context llama.cpp really allocates: rounded up to a multiple of 256."""
    return -(-max(context, 1) // CONTEXT_PAD) * CONTEXT_PAD


def kv_row_bytes(elements: int, kv_type: str) -> int:
    """Bytes of one K (or V) row of `elements` values in a cache type."""
    if kv_type in ("q8_0", "q4_0"):
        return elements // 32 * (34 if kv_type == "q8_0" else 18)
    return int(elements * KV_BYTES[kv_type])


def kv_cache_bytes(shape: ModelShape, context: int, kv_type: str = "f16", layers: int | None = None) -> int:
    """layers x context x (KV heads x head size) x 2 (K and V) x bytes per element."""
    n_layers = shape.layers if layers is None else layers
    return n_layers * context * 2 * kv_row_bytes(shape.kv_dim, kv_type)


def _phases(shape: ModelShape, n_kv: int, ubatch: int, flash_attention: bool, outputs: int) -> list[float]:
    c = COEFFICIENTS
    h = ubatch * shape.hidden * 4
    output = c["v_out"] * outputs * shape.vocab * 4 + c["h_out"] * h
    kq = 0.0 if flash_attention else c["kq"] * n_kv * ubatch * shape.heads * 4
    mask = c["mask"] * n_kv * ubatch * (2 if flash_attention else 4)
    attention = kq + mask + c["h_attn"] * h + c["kv_attn"] * ubatch * shape.kv_dim * 4
    ffn = c["f_ffn"] * ubatch * shape.ffn * 4 + c["h_ffn"] * h
    return [output, attention, ffn]


def compute_buffer_bytes(shape: ModelShape, context: int, *, flash_attention: bool, ubatch: int = DEFAULT_UBATCH,
                         outputs: int | None = None) -> int:
    """llama.cpp's compute buffer as it reserves it (worst case: a full batch, every position an output)."""
    n_out = ubatch if outputs is None else outputs
    return int(max(_phases(shape, padded_context(context), ubatch, flash_attention, n_out)))


def cpu_work_bytes(shape: ModelShape, context: int, *, flash_attention: bool, kv_type: str = "f16",
                   ubatch: int = DEFAULT_UBATCH) -> int:
    """The CPU backend's scratch buffer (outside the compute buffer): without flash attention the softmax
    of KQ is converted to the f16 of the V cache, n_kv x ubatch x heads x 2 bytes; otherwise the activations
    converted for the weights' dot products dominate."""
    activations = ubatch * max(shape.ffn, shape.hidden) * 2
    if flash_attention or kv_type == "f32":
        return activations
    return max(activations, padded_context(context) * ubatch * shape.heads * 2)


def compute_resident_bytes(shape: ModelShape, context: int, *, flash_attention: bool, kv_type: str = "f16",
                           ubatch: int = DEFAULT_UBATCH) -> int:
    """What a CPU process touches once a prompt has filled the context: the compute buffer of graphs with
    one output (localr1 asks for the last position's logits only) and the CPU backend's scratch buffer.
    With flash attention the per-graph peak is small and the graphs of a growing cache place the f16 mask at
    different offsets: after a long prompt one more mask's worth of the buffer has been touched (measured)."""
    graph = compute_buffer_bytes(shape, context, flash_attention=flash_attention, ubatch=ubatch, outputs=1)
    if flash_attention:
        graph += padded_context(context) * ubatch * 2
    return graph + cpu_work_bytes(shape, context, flash_attention=flash_attention, kv_type=kv_type, ubatch=ubatch)


def output_buffer_bytes(shape: ModelShape) -> int:
    """llama.cpp's logits buffer for one output."""
    return shape.vocab * 4


def runtime_overhead(shape: ModelShape) -> int:
    """The process itself with llama.cpp and this model's vocabulary and context loaded."""
    merges = shape.vocab if shape.merges is None else shape.merges
    vocabulary = VOCAB_BYTES_PER_TOKEN * shape.vocab + VOCAB_BYTES_PER_MERGE * merges
    return PROCESS_ANON + LIBRARY_PAGES + MODEL_FIXED + vocabulary


def slot_devices(n_layers: int, gpu_layers: Sequence[int]) -> list[int]:
    """Device of each of the n_layer + 1 slots (the last is the output head): -1 for the CPU, else the GPU
    index; GPUs take the last slots in order, as llama.cpp's layer split does."""
    offloaded = min(sum(gpu_layers), n_layers + 1)
    devices = [-1] * (n_layers + 1 - offloaded)
    for gpu, count in enumerate(gpu_layers):
        devices += [gpu] * count
    return devices[: n_layers + 1]


@dataclass(frozen=True)
class DeviceMemory:
    """Predicted bytes on one device. For the CPU, `weights` counts each weight once (what must fit) and
    `reclaimable` the mapped file pages of repacked tensors that show in RSS but the kernel may drop."""

    device: str
    weights: int
    kv_cache: int
    compute: int
    overhead: int
    layers: int
    holds_output: bool
    reclaimable: int = 0

    @property
    def total(self) -> int:
        """Bytes this device must hold."""
        return self.weights + self.kv_cache + self.compute + self.overhead

    @property
    def at_load(self) -> int:
        """CPU resident set right after loading: the compute buffer is reserved but not yet touched."""
        return self.total - self.compute + self.reclaimable

    @property
    def peak_resident(self) -> int:
        """CPU resident set after a prompt that fills the context."""
        return self.total + self.reclaimable


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory on every device for one configuration; the CPU comes first."""

    devices: tuple[DeviceMemory, ...]
    context: int

    @property
    def cpu(self) -> DeviceMemory:
        """The CPU's share."""
        return self.devices[0]

    @property
    def gpus(self) -> tuple[DeviceMemory, ...]:
        """Each GPU's share, in order."""
        return self.devices[1:]


def estimate_memory(shape: ModelShape, weights: WeightsLayout, *, context: int, kv_type: str = "f16",
                    flash_attention: bool = False, gpu_layers: Sequence[int] = (), ubatch: int = DEFAULT_UBATCH,
                    repacked_types: frozenset[str] = frozenset(), gpu_names: Sequence[str] = (),
                    gpu_overheads: Sequence[int] = ()) -> MemoryEstimate:
    """Bytes per device for a model loaded with these settings (mmap on, one sequence). `gpu_overheads`
    replaces GPU_CONTEXT per device (an RPC worker has no GPU context in the memory it lends)."""
    n_ctx = padded_context(context)
    slots = slot_devices(shape.layers, gpu_layers)
    kv_layer = kv_cache_bytes(shape, n_ctx, kv_type, layers=1)
    totals = weights.layer_totals
    repacked_layers, repacked_head, _ = weights.repacked_bytes(repacked_types)
    devices: list[DeviceMemory] = []
    for device in range(-1, len(gpu_layers)):
        held = [i for i in range(shape.layers) if slots[i] == device]
        holds_output = slots[shape.layers] == device
        on_cpu = device == -1
        # a GPU holding the head of a tied model needs its own copy of the embedding
        head = weights.output if on_cpu else weights.streamed_output
        w = sum(totals[i] for i in held) + (head.total if holds_output else 0)
        kv = kv_layer * len(held)
        if on_cpu:
            w += weights.input.total
            busy = bool(held) or holds_output
            compute = (compute_resident_bytes(shape, n_ctx, flash_attention=flash_attention, kv_type=kv_type,
                                              ubatch=ubatch) if busy else 2 * ubatch * shape.hidden * 4)
            overhead = runtime_overhead(shape) + output_buffer_bytes(shape)
            reclaimable = sum(repacked_layers[i] for i in held) + (repacked_head if holds_output else 0)
            devices.append(DeviceMemory("CPU", w, kv, compute, overhead, len(held), holds_output, reclaimable))
        else:
            outputs = ubatch if holds_output else 0
            # a GPU commits the whole reservation; ggml's allocator may fragment it beyond the formula
            reserved = compute_buffer_bytes(shape, n_ctx, flash_attention=flash_attention, ubatch=ubatch,
                                            outputs=outputs)
            compute = int(reserved * (1 + FRAGMENTATION)) if (held or holds_output) else 0
            name = gpu_names[device] if device < len(gpu_names) else f"GPU{device}"
            overhead = gpu_overheads[device] if device < len(gpu_overheads) else GPU_CONTEXT
            devices.append(DeviceMemory(name, w, kv, compute, overhead, len(held), holds_output))
    return MemoryEstimate(tuple(devices), n_ctx)
