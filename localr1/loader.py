"""Open a model by key or path the way the planner chooses: variant, context, KV type, flash attention, GPU
layers and threads, each overridable; when llama.cpp still runs out of memory, fall back to the next plan.

llama_cpp is imported lazily (by the engine), so the CLI and the TUI can import this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from localr1.engine.params import LoadParams, LoadRequest, SamplingParams, SpeedPrediction
from localr1.errors import ConfigError, ModelMemoryError
from localr1.ggufinfo import read_info
from localr1.hardware import HardwareProfile, cached_speed, probe, with_speed
from localr1.plan import GPU_MARGIN_FRACTION, GPU_MARGIN_MIN, NoFitError, Plan, Wishes, plan_model
from localr1.registry import ResolvedModel, default_sampling, installed_path, resolve_model
from localr1.residency import LOCK_HEADROOM, LockStatus, memlock_limit, raise_limit_hint

if TYPE_CHECKING:
    from localr1.engine.port import ChatEngine

E = TypeVar("E")
Notify = Callable[[str], None]
MAX_FALLBACKS = 4
SHRINK = 0.8  # after a failed load, the next plan may use at most this share of what the failed one predicted
ALL_LAYERS = 1_000_000  # --gpu-layers -1
SLOT_STEP = 256  # llama.cpp sizes each sequence's context (and the whole one) in steps of 256 tokens


@dataclass(frozen=True)
class LoadAttempt:
    """One try at loading: the file, llama.cpp's parameters, sampling, and the plan behind them."""

    path: Path
    params: LoadParams
    sampling: SamplingParams
    prediction: SpeedPrediction | None
    facts: dict[str, Any]
    display_name: str | None = None  # the registry's name, when the model is a known one


def sampling_for(resolved: ResolvedModel, overrides: dict[str, Any]) -> SamplingParams:
    """The model's recommended sampling (models.toml, or R1/generic defaults) with overrides."""
    entry = resolved.entry
    base = entry.sampling if entry is not None else default_sampling(read_info(resolved.path).is_r1)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def runtime_hardware() -> HardwareProfile:
    """This machine, with its CPU speed when it was measured before (`localr1 plan` measures it; a load never
    spends half a minute on that: without it the plan has no speed figures)."""
    from localr1.engine.params import default_threads

    profile = probe()
    return with_speed(profile, cached_speed(profile, default_threads()))


def wishes_for(request: LoadRequest) -> Wishes:
    """The planner's wishes from the user's explicit choices."""
    if request.kv_cache_type in ("q8_0", "q4_0") and request.flash_attention is False:
        raise ConfigError(f"a {request.kv_cache_type} KV cache needs flash attention "
                          "(drop --no-flash-attn, or use --kv-type f16)")
    layers = ALL_LAYERS if request.gpu_layers == -1 else request.gpu_layers
    return Wishes(context=request.context_size, quant=request.quant, kv_type=request.kv_cache_type,
                  flash_attention=request.flash_attention, gpu_layers=layers)


def _lock_status(plan: Plan, request: LoadRequest) -> LockStatus:
    v = plan.config.variant
    room = plan.budget.used_ram(plan.config.memory) <= LOCK_HEADROOM * plan.budget.ram
    status = LockStatus(needed=v.file_size or v.weights.total, limit=memlock_limit(), room=room)
    return replace(status, in_use=request.use_mlock and status.limit_ok)


def _facts(plan: Plan, lock: LockStatus, fallbacks: list[str]) -> dict[str, Any]:
    c = plan.config
    return {
        "summary": plan.summary(), "variant": c.variant.file_type,
        "file": str(c.variant.path) if c.variant.path else None, "kld": c.variant.kld,
        "kld_source": c.variant.kld_source, "context": c.context, "kv_type": c.kv_type,
        "flash_attention": c.flash_attention, "gpu_layers": c.n_gpu_layers, "layers": plan.slots,
        "device_split": plan.device_split(), "threads": plan.threads,
        "memory": {d.device: d.total for d in c.memory.devices}, "ram_bytes": plan.budget.used_ram(c.memory),
        "speed": None if c.speed is None else {"decode_tps": c.speed.decode_tps,
                                               "decode_tps_full_context": c.speed.decode_tps_full,
                                               "prompt_tps": c.speed.prompt_tps},
        "mlock": lock.as_dict(), "fallbacks": list(fallbacks), "notes": list(plan.notes),
    }


def _attempt(resolved: ResolvedModel, plan: Plan, request: LoadRequest, overrides: dict[str, Any],
             fallbacks: list[str]) -> LoadAttempt:
    path = plan.config.variant.path
    assert path is not None  # only installed variants are planned for a load
    lock = _lock_status(plan, request)
    if request.threads:  # --threads: the plan shown says what runs
        plan = replace(plan, threads=request.threads)
    params = replace(plan.load_params(), threads=plan.threads, use_mmap=request.use_mmap,
                     use_mlock=lock.in_use)
    speed = plan.config.speed
    prediction = SpeedPrediction(speed.decode_tps, speed.decode_tps_full) if speed else None
    sampling = sampling_for(ResolvedModel(path, resolved.entry), overrides)
    name = resolved.entry.display_name if resolved.entry is not None else None
    return LoadAttempt(path, params, sampling, prediction, _facts(plan, lock, fallbacks), name)


def _shrunk(hardware: HardwareProfile, plan: Plan) -> HardwareProfile:
    """The machine as the failed plan found it: at most SHRINK of the memory that plan predicted, per device."""
    memory, budget = plan.config.memory, plan.budget
    used_ram = budget.used_ram(memory)
    ram = hardware.ram_available - max(0, budget.ram - int(SHRINK * used_ram))
    gpus = list(hardware.gpus)
    for i, (g, used) in enumerate(zip(hardware.gpus, memory.gpus, strict=False)):
        if used.total:
            margin = max(GPU_MARGIN_MIN, int(g.total * GPU_MARGIN_FRACTION))
            gpus[i] = replace(g, free=min(g.free, margin + int(SHRINK * used.total)))
    return replace(hardware, ram_available=max(1, ram), gpus=tuple(gpus))


def _next_plan(model: str, hardware: HardwareProfile, wishes: Wishes, failed: Plan
               ) -> tuple[HardwareProfile, Wishes, Plan] | None:
    """A cheaper plan than the one llama.cpp refused; a pinned context is given up only when nothing else fits."""
    shrunk = _shrunk(hardware, failed)
    for w in (wishes, replace(wishes, context=None)) if wishes.context is not None else (wishes,):
        try:
            return shrunk, w, plan_model(model, shrunk, w)
        except NoFitError:
            continue
    return None


def plan_for(model: str, request: LoadRequest, hardware: HardwareProfile | None = None
             ) -> tuple[ResolvedModel, Plan]:
    """What a load of `model` would use: the resolved model and the planner's choice (errors are one line)."""
    resolved = resolve_model(model)
    if not resolved.path.is_dir():
        read_info(resolved.path)  # a missing or broken file fails here, in the words the engine uses
    return resolved, plan_model(_target(model, resolved), hardware or runtime_hardware(), wishes_for(request))


def _target(model: str, resolved: ResolvedModel) -> str:
    """What the planner is asked about: the key, or the file a path names or discovery found (a copy another
    tool downloaded is the only variant on disk, not the key's standard ladder)."""
    if resolved.path.is_file() and (resolved.entry is None or installed_path(resolved.entry) is None):
        return str(resolved.path)
    return model


def planned_batch_load(model: str, request: LoadRequest, overrides: dict[str, Any] | None, parallel: int
                       ) -> LoadAttempt:
    """The planner's load for `parallel` sequences in one context: without --ctx, the context the planner
    budgeted for one conversation is shared among the sequences (so the KV cache stays within the plan).
    With RPC workers, each is probed first (an unreachable one is a one-line error) and counted as a device."""
    resolved, plan = plan_for(model, request, _with_workers(request, runtime_hardware()))
    attempt = _attempt(resolved, plan, request, overrides or {}, [])
    if request.context_size is None:  # down to a whole number of steps: within the planned KV cache
        per_sequence = max(2 * SLOT_STEP, attempt.params.context_size // max(1, parallel) // SLOT_STEP * SLOT_STEP)
    else:  # up, as llama.cpp would (warning on the terminal that n_ctx is not divisible by n_seq_max)
        per_sequence = -(-attempt.params.context_size // SLOT_STEP) * SLOT_STEP
    return replace(attempt, params=replace(attempt.params, context_size=per_sequence))


def load_planned(model: str, request: LoadRequest, overrides: dict[str, Any] | None, make: Callable[[LoadAttempt], E],
                 *, hardware: HardwareProfile | None = None, notify: Notify | None = None) -> E:
    """Plan, then `make` the engine; on llama.cpp's out-of-memory error try the next, cheaper plan and say so."""
    hardware = hardware or runtime_hardware()
    wishes = wishes_for(request)
    resolved, plan = plan_for(model, request, hardware)
    target = _target(model, resolved)
    mlock_said = False
    fallbacks: list[str] = []
    for _ in range(MAX_FALLBACKS + 1):
        attempt = _attempt(resolved, plan, request, overrides or {}, fallbacks)
        if request.use_mlock and not attempt.params.use_mlock and notify and not mlock_said:
            notify(f"{raise_limit_hint(_lock_status(plan, request))}; loading without locking")
            mlock_said = True
        try:
            return make(attempt)
        except ModelMemoryError as exc:
            following = _next_plan(target, hardware, wishes, plan)
            if following is None:
                raise ModelMemoryError(f"{exc}; no smaller plan fits either") from None
            hardware, wishes, next_plan = following
            message = (f"llama.cpp could not allocate the memory for {plan.config.variant.file_type} with "
                       f"{plan.config.context} tokens ({plan.device_split()}); falling back to {next_plan.summary()}")
            fallbacks.append(message)
            if notify is not None:
                notify(message)
            plan = next_plan
    raise ModelMemoryError(f"llama.cpp refused {MAX_FALLBACKS + 1} plans for lack of memory: {fallbacks[-1]}")


def _with_workers(request: LoadRequest, hardware: HardwareProfile) -> HardwareProfile:
    """The machine plus the memory each RPC worker lends (probed in a child process: a lost one is an error)."""
    if not request.workers:
        return hardware
    from localr1.planner.remote import remote_devices, with_workers

    return with_workers(hardware, remote_devices(request.workers))


def _engine(attempt: LoadAttempt) -> ChatEngine:
    from localr1.engine.engine import Engine

    if attempt.params.workers:  # a lost worker aborts llama.cpp: the model runs in a child process
        from localr1.engine.isolated import IsolatedEngine

        return IsolatedEngine(attempt.path, attempt.params, attempt.sampling, probed=True)
    engine = Engine(attempt.path, attempt.params, attempt.sampling, prediction=attempt.prediction, plan=attempt.facts)
    engine.display_name = attempt.display_name
    return engine


def open_engine(model: str, request: LoadRequest, sampling_overrides: dict[str, Any] | None = None, *,
                notify: Notify | None = None, hardware: HardwareProfile | None = None) -> ChatEngine:
    """Resolve, plan, validate and load a model; llama_cpp is imported here, lazily.

    With RPC workers, each is probed first (an unreachable one is a one-line error) and the planner counts
    the memory it lends as one more device.
    """
    if request.workers:
        hardware = _with_workers(request, hardware or runtime_hardware())
    return load_planned(model, request, sampling_overrides, _engine, hardware=hardware, notify=notify)
