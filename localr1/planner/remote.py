"""RPC workers as devices for the planner: the memory each lends, and what the network costs per token.

A worker enters the plan as a `GPU` entry of vendor "rpc" (it holds whole layers like a GPU does), placed
before the local GPUs, the order llama.cpp gets its devices in (localr1/engine/engine.py). Its compute is
assumed to be as fast as this machine's CPU (a worker is usually a similar computer); the speed model adds
the network: per token, each worker that holds layers costs one exchange with the client, measured here on
loopback (benchmarks/workers.py), and a typical LAN adds its round trip and the activations' transfer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from localr1.hardware import GPU, HardwareProfile

REMOTE_VENDOR = "rpc"
# Per token and worker on loopback, measured by benchmarks/workers.py (demo model, one layer on a worker
# vs none; see benchmarks/RESULTS.md): the RPC exchange itself (serialising, syscalls, wake-ups). 3.0 ms
# was measured on a very busy 2-core machine (load ~15): an upper figure until a quiet run replaces it.
LOOPBACK_EXCHANGE_S = 3.0e-3
# The assumption for a real network: gigabit Ethernet through one switch, about 0.3 ms per round trip,
# 2 round trips per exchange (graph compute, then reading the result back), ~110 MB/s of payload.
LAN_ROUND_TRIP_S = 0.3e-3
LAN_ROUND_TRIPS = 2
LAN_BYTES_PER_S = 110e6


@dataclass(frozen=True)
class RemoteDevice:
    """A worker at `endpoint` lending `free` of `total` bytes; `loopback` when it runs on this machine."""

    endpoint: str
    free: int
    total: int
    loopback: bool = False

    def as_gpu(self) -> GPU:
        """The planner's device entry for this worker (bandwidth and flops unused: see speed.py)."""
        return GPU(name=self.endpoint, vendor=REMOTE_VENDOR, total=self.total, free=self.free,
                   bandwidth=0.0, flops=0.0, spec_known=False)


def is_remote(gpu: GPU) -> bool:
    """True for a worker's entry."""
    return gpu.vendor == REMOTE_VENDOR


def exchange_seconds(hidden: int, *, loopback: bool, tokens: int = 1) -> float:
    """Network time of one exchange with a worker holding layers, for a batch of `tokens`: the hidden
    states go there and back."""
    if loopback:
        return LOOPBACK_EXCHANGE_S
    payload = 2 * hidden * 4 * tokens  # f32 activations in, and out
    return LOOPBACK_EXCHANGE_S + LAN_ROUND_TRIPS * LAN_ROUND_TRIP_S + payload / LAN_BYTES_PER_S


def with_workers(hardware: HardwareProfile, workers: tuple[RemoteDevice, ...]) -> HardwareProfile:
    """The profile with the workers added as devices in front of the local GPUs (those only if usable)."""
    if not workers:
        return hardware
    local = hardware.gpus if hardware.gpu_offload else ()
    loopback = [w.endpoint for w in workers if w.loopback]
    extra = {**hardware.extra, "loopback_workers": loopback}
    return replace(hardware, gpus=tuple(w.as_gpu() for w in workers) + local, gpu_offload=True, extra=extra)


def proportional_split(slots: int, shares: list[int]) -> list[int]:
    """`slots` whole layers in proportion to `shares` (largest remainders first)."""
    total = sum(shares)
    if total <= 0:
        return [0] * len(shares)
    exact = [slots * s / total for s in shares]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(shares)), key=lambda i: exact[i] - counts[i], reverse=True)[: slots - sum(counts)]:
        counts[i] += 1
    return counts


def default_split(layers: int, local_free: int, worker_free: list[int]) -> tuple[int, tuple[float, ...]]:
    """Without a plan: the n_layers + 1 slots (the output head is one) shared between this machine and the
    workers in proportion to the memory each has free; returns (slots off this machine, tensor_split)."""
    counts = proportional_split(layers + 1, [local_free, *worker_free])
    remote = counts[1:]
    return sum(remote), tuple(float(c) for c in remote)


def remote_devices(endpoints: tuple[str, ...]) -> tuple[RemoteDevice, ...]:
    """Probe the workers (a one-line error for one that does not answer) and describe each as a device."""
    from localr1.workers import is_loopback, parse_endpoint, probe_workers

    infos = probe_workers(tuple(parse_endpoint(e) for e in endpoints))
    return tuple(RemoteDevice(str(i.endpoint), i.free, i.total, loopback=is_loopback(i.endpoint.host))
                 for i in infos)
