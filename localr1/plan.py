"""The planner: picks the variant, context size, KV cache type, flash attention, GPU layers and threads
that fit this machine, predicts memory and speed, and says why every other variant lost.

Pure Python: candidates, a hardware profile and the user's wishes in; a `Plan` out. No llama_cpp import.

Rules: a variant must fit with a *useful* context: 8192 tokens for a reasoning model, because R1 thinks
for thousands of tokens before it answers and a cut-off trace gives no answer at all (4096 for other
models). The context then grows as far as memory allows, up to 32768 (R1's own evaluations generated at
most 32k tokens, and a longer cache slows every token) or the model's limit, unless the longer context
costs more than a fifth of the speed (layers pushed off the GPU). A q8_0 KV cache (with flash attention,
which it needs) is used only when the f16 cache would not fit at that context. The best quality wins
among the variants at least half as fast as the fastest variant of acceptable quality (mean KLD <= 0.05):
a better quant is worth up to half the speed, not a tenfold drop from spilling off the GPU. Quality
differences under 0.002 mean KLD are not worth any speed (Q8_0 over F16). A variant worse than 0.2 mean
KLD (Q2_K) is chosen only when nothing better fits even with a short context. When every variant in the
running was measured on tasks (`localr1 eval --tasks`), measured accuracy decides instead of KLD: what
answers right matters more than how far the next-token distribution drifts; differences under one
percentage point are not worth any speed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from localr1.engine.params import LoadParams
from localr1.errors import LocalR1Error
from localr1.hardware import HardwareProfile
from localr1.planner.candidates import Variant
from localr1.planner.memory import GPU_CONTEXT, MemoryEstimate, estimate_memory
from localr1.planner.remote import is_remote
from localr1.planner.shape import ModelShape
from localr1.planner.speed import SpeedEstimate, predict_speed

MiB, GiB = 2**20, 2**30
USEFUL_CONTEXT = 8192
USEFUL_CONTEXT_PLAIN = 4096
MIN_CONTEXT = 2048
DEFAULT_MAX_CONTEXT = 32768
CONTEXT_STEPS = (131072, 65536, 32768, 24576, 16384, 12288, 8192, 6144, 4096, 3072, 2048)
NEGLIGIBLE_KLD = 0.002
NEGLIGIBLE_ACCURACY = 0.01  # one percentage point of task accuracy
QUALITY_FLOOR_KLD = 0.05  # "acceptable quality": IQ4_XS (0.036) or better
SPEED_RATIO = 0.5  # a better variant must keep half the speed of the fastest acceptable one
USABLE_KLD = 0.2  # above this (Q2_K: 0.45) reasoning falls apart: only when nothing better fits at all
CONTEXT_SPEED_RATIO = 0.8  # a longer context may cost at most a fifth of the speed
GPU_MARGIN_FRACTION, GPU_MARGIN_MIN = 0.05, 256 * MiB
RAM_RESERVE_FRACTION, RAM_RESERVE_MIN = 0.05, 512 * MiB


class NoFitError(LocalR1Error):
    """Nothing the planner can offer fits the memory this machine has."""


@dataclass(frozen=True)
class Wishes:
    """What the user asked for; None means "let the planner choose"."""

    context: int | None = None
    min_context: int | None = None
    max_context: int = DEFAULT_MAX_CONTEXT
    min_tokens_per_s: float | None = None
    prefer: Literal["quality", "speed"] = "quality"
    memory_ceiling: int | None = None
    reserve: int | None = None
    quant: str | None = None
    kv_type: str | None = None
    flash_attention: bool | None = None
    gpu_layers: int | None = None


@dataclass(frozen=True)
class Budget:
    """Bytes the plan may use: RAM for the CPU side, and on each GPU."""

    ram: int
    gpus: tuple[int, ...]
    unified: bool = False

    def used_ram(self, memory: MemoryEstimate) -> int:
        """RAM a configuration takes (with unified memory, what the GPU holds is RAM too)."""
        return memory.cpu.total + (sum(g.total for g in memory.gpus) if self.unified else 0)

    def fits(self, memory: MemoryEstimate) -> bool:
        """True when every device stays within its budget."""
        gpus_fit = all(g.total <= b for g, b in zip(memory.gpus, self.gpus, strict=False))
        return gpus_fit and self.used_ram(memory) <= self.ram


@dataclass(frozen=True)
class Config:
    """One way to run one variant."""

    variant: Variant
    context: int
    kv_type: str
    flash_attention: bool
    gpu_layers: tuple[int, ...]
    memory: MemoryEstimate
    speed: SpeedEstimate | None

    @property
    def n_gpu_layers(self) -> int:
        """llama.cpp's n_gpu_layers (the output head counts as one)."""
        return sum(self.gpu_layers)


@dataclass(frozen=True)
class Alternative:
    """A variant the plan did not choose, its best configuration (None: nothing fits) and why it lost."""

    variant: Variant
    config: Config | None
    reason: str


@dataclass(frozen=True)
class Plan:
    """The chosen configuration, the budget it was made for, and every alternative considered."""

    model: str
    hardware: str
    config: Config
    threads: int
    budget: Budget
    alternatives: tuple[Alternative, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    gpu_names: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()  # RPC workers ("host:port"), the first devices of gpu_layers

    def load_params(self) -> LoadParams:
        """The engine's load parameters for this plan (with workers: which ones, and each device's layers)."""
        c = self.config
        split = tuple(float(n) for n in c.gpu_layers) if self.workers else ()
        return LoadParams(context_size=c.context, threads=self.threads, gpu_layers=c.n_gpu_layers,
                          kv_cache_type=c.kv_type, flash_attention=c.flash_attention,  # type: ignore[arg-type]
                          workers=self.workers, tensor_split=split)

    @property
    def slots(self) -> int:
        """Layers llama.cpp can offload: the repeating layers and the output head."""
        return sum(d.layers for d in self.config.memory.devices) + 1

    def device_split(self) -> str:
        """Where the layers run, in a few words ("CPU only", "all 29 layers on GPU0", "20 of 29 layers on GPU...")."""
        c = self.config
        if not c.n_gpu_layers:
            return "CPU only"
        gpus = [f"GPU{i} {n}" for i, n in enumerate(c.gpu_layers) if n]
        where = gpus[0].split()[0] if len(gpus) == 1 else f"GPUs ({', '.join(gpus)})"
        if c.n_gpu_layers >= self.slots:
            return f"all {self.slots} layers on {where}"
        return f"{c.n_gpu_layers} of {self.slots} layers on {where}, the rest on the CPU"

    def summary(self) -> str:
        """The plan in one line, as `run` prints it."""
        c = self.config
        source = "measured" if c.variant.kld_source.startswith("measured") else "reference"
        kld = f"mean KLD {c.variant.kld:.4f} {source}" if c.variant.kld is not None else "quality unknown"
        speed = f", ~{c.speed.decode_tps:.1f} tokens/s predicted" if c.speed else ""
        fa = ", flash attention" if c.flash_attention else ""
        return (f"{c.variant.label}, {kld}, {c.context} tokens, {c.kv_type} KV{fa}, {self.device_split()}, "
                f"{self.threads} thread{'s' if self.threads != 1 else ''}{speed}")

    def to_json(self) -> dict[str, Any]:
        """The plan as `localr1 plan --json` prints it."""
        return {
            "model": self.model, "hardware": self.hardware, **config_json(self.config), "threads": self.threads,
            "budget": {"ram": self.budget.ram, "gpus": list(self.budget.gpus), "unified_memory": self.budget.unified},
            "gpus": list(self.gpu_names), "workers": list(self.workers),
            "notes": list(self.notes),
            "alternatives": [{**(config_json(a.config) if a.config else {"variant": variant_json(a.variant)}),
                              "reason": a.reason} for a in self.alternatives],
        }


def variant_json(v: Variant) -> dict[str, Any]:
    """A variant's identity and quality (task accuracy None when not measured)."""
    a = v.accuracy
    accuracy = None if a is None else {"value": a.value, "ci_low": a.low, "ci_high": a.high, "problems": a.problems,
                                       "samples": a.samples, "problem_set": a.problem_set}
    return {"type": v.file_type, "path": str(v.path) if v.path else None, "weights_bytes": v.weights.total,
            "file_bytes": v.file_size, "kld": v.kld, "kld_source": v.kld_source, "accuracy": accuracy}


def config_json(c: Config) -> dict[str, Any]:
    """A configuration with its predicted memory per device and speed."""
    return {
        "variant": variant_json(c.variant), "context": c.context, "kv_type": c.kv_type,
        "flash_attention": c.flash_attention, "gpu_layers": c.n_gpu_layers, "tensor_split": list(c.gpu_layers),
        "memory": {d.device: {"weights": d.weights, "kv_cache": d.kv_cache, "compute": d.compute,
                              "overhead": d.overhead, "total": d.total, "layers": d.layers,
                              "output_head": d.holds_output} for d in c.memory.devices},
        "speed": None if c.speed is None else {"decode_tps": c.speed.decode_tps,
                                               "decode_tps_full_context": c.speed.decode_tps_full,
                                               "prompt_tps": c.speed.prompt_tps},
    }


def make_budget(hardware: HardwareProfile, wishes: Wishes) -> Budget:
    """RAM left after a reserve for the system (or the user's ceiling), and each usable GPU's free memory
    less a margin for fragmentation and the display."""
    reserve = wishes.reserve if wishes.reserve is not None else max(
        RAM_RESERVE_MIN, int(hardware.ram_total * RAM_RESERVE_FRACTION))
    ram = hardware.ram_available - reserve
    if wishes.memory_ceiling is not None:
        ram = min(ram, wishes.memory_ceiling)
    usable = hardware.gpus if hardware.gpu_offload and wishes.gpu_layers != 0 else ()
    gpus = tuple(max(0, g.free - max(GPU_MARGIN_MIN, int(g.total * GPU_MARGIN_FRACTION))) for g in usable)
    return Budget(max(0, ram), gpus, unified=any(g.unified for g in usable))


def _split(n: int, budgets: Sequence[int]) -> tuple[int, ...]:
    """n slots over the GPUs in proportion to their free memory (largest remainders first)."""
    total = sum(budgets)
    if total <= 0:
        return tuple(0 for _ in budgets)
    exact = [n * b / total for b in budgets]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(budgets)), key=lambda i: exact[i] - counts[i], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    return tuple(counts)


class _Search:
    """Evaluates configurations of one model on one machine."""

    def __init__(self, shape: ModelShape, hardware: HardwareProfile, budget: Budget, wishes: Wishes) -> None:
        self.shape, self.hardware, self.budget, self.wishes = shape, hardware, budget, wishes
        self.repacked = frozenset(hardware.cpu_speed.repacked_types if hardware.cpu_speed else ())
        self.overheads = tuple(0 if is_remote(g) else GPU_CONTEXT for g in hardware.gpus)

    def memory(self, v: Variant, context: int, kv: str, fa: bool, split: tuple[int, ...]) -> MemoryEstimate:
        return estimate_memory(self.shape, v.weights, context=context, kv_type=kv, flash_attention=fa,
                               gpu_layers=split, repacked_types=self.repacked, gpu_overheads=self.overheads)

    def _gpus_fit(self, memory: MemoryEstimate) -> bool:
        return all(g.total <= b for g, b in zip(memory.gpus, self.budget.gpus, strict=False))

    def gpu_split(self, v: Variant, context: int, kv: str, fa: bool) -> tuple[int, ...]:
        """The most slots that fit on the GPUs (all when they fit), split in proportion to free memory."""
        if not self.budget.gpus:
            return ()
        slots = self.shape.layers + 1
        if self.wishes.gpu_layers is not None:
            return _split(min(self.wishes.gpu_layers, slots), self.budget.gpus)
        low, high = 0, slots
        while low < high:
            mid = (low + high + 1) // 2
            if self._gpus_fit(self.memory(v, context, kv, fa, _split(mid, self.budget.gpus))):
                low = mid
            else:
                high = mid - 1
        return _split(low, self.budget.gpus)

    def config(self, v: Variant, context: int, kv: str, fa: bool) -> Config:
        split = self.gpu_split(v, context, kv, fa)
        memory = self.memory(v, context, kv, fa, split)
        speed = None
        if self.hardware.cpu_speed is not None:
            speed = predict_speed(self.shape, v.weights, self.hardware, context=context, kv_type=kv,
                                  gpu_layers=split)
        return Config(v, memory.context, kv, fa, split, memory, speed)

    def kv_options(self) -> list[tuple[str, bool]]:
        w = self.wishes
        if w.kv_type is not None:
            fa = True if w.kv_type in ("q8_0", "q4_0") or w.flash_attention is None else w.flash_attention
            return [(w.kv_type, fa)]
        if w.flash_attention is False:
            return [("f16", False)]
        return [("f16", True), ("q8_0", True)]

    def contexts(self) -> list[int]:
        if self.wishes.context is not None:
            return [self.wishes.context]
        cap = min(self.shape.context_length or DEFAULT_MAX_CONTEXT, self.wishes.max_context)
        return [c for c in CONTEXT_STEPS if MIN_CONTEXT <= c <= cap] or [cap]

    def best(self, v: Variant, useful: int) -> Config | None:
        """The largest context that fits without losing more than a fifth of the speed (f16 KV before q8_0
        at each size; a useful context when one fits), or None when nothing fits."""
        fitting = []
        for context in self.contexts():
            for kv, fa in self.kv_options():
                c = self.config(v, context, kv, fa)
                if self.budget.fits(c.memory):
                    fitting.append(c)
                    break  # f16 fits at this size: q8_0 would only lose precision
        if not fitting:
            return None
        fitting = [c for c in fitting if c.context >= useful] or fitting
        fastest = max(_tps(c) for c in fitting)
        return next(c for c in fitting if _tps(c) >= CONTEXT_SPEED_RATIO * fastest)

    def smallest(self, v: Variant) -> Config:
        """The cheapest configuration of a variant (to say what it would need)."""
        context = self.wishes.context or MIN_CONTEXT
        kv, fa = self.kv_options()[-1]
        return self.config(v, context, kv, fa)


def _tps(c: Config) -> float:
    return c.speed.decode_tps if c.speed else 0.0


def _kld(v: Variant) -> float:
    return v.kld if v.kld is not None else 1.0


def _acc(v: Variant) -> float:
    return v.accuracy.value if v.accuracy is not None else 0.0


def by_accuracy(configs: Sequence[Config]) -> bool:
    """True when every configuration's variant has measured task accuracy: it then decides, not KLD."""
    return bool(configs) and all(c.variant.accuracy is not None for c in configs)


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def _needs(c: Config, budget: Budget) -> str:
    parts = [f"{_gb(budget.used_ram(c.memory))} of RAM (budget {_gb(budget.ram)})"]
    for g, b in zip(c.memory.gpus, budget.gpus, strict=False):
        if g.total:
            parts.append(f"{_gb(g.total)} on {g.device} (budget {_gb(b)})")
    return ", ".join(parts)


def _reference_tps(fitting: list[Config]) -> float:
    """The speed of the fastest variant of acceptable quality (of any, when none is acceptable)."""
    good = [c for c in fitting if _kld(c.variant) <= QUALITY_FLOOR_KLD] or fitting
    return max(_tps(c) for c in good)


def _fast_enough(fitting: list[Config]) -> list[Config]:
    """The configurations at least half as fast as the fastest of acceptable quality."""
    floor = SPEED_RATIO * _reference_tps(fitting)
    return [c for c in fitting if _tps(c) >= floor] or fitting


def _choose(fitting: list[Config], prefer: str) -> Config:
    if prefer == "speed":
        good = [c for c in fitting if _kld(c.variant) <= QUALITY_FLOOR_KLD] or fitting
        return max(good, key=lambda c: (_tps(c), -_kld(c.variant)))
    fast_enough = _fast_enough(fitting)
    if by_accuracy(fast_enough):
        top = max(_acc(c.variant) for c in fast_enough)
        near = [c for c in fast_enough if _acc(c.variant) >= top - NEGLIGIBLE_ACCURACY]
        return max(near, key=lambda c: (_tps(c), _acc(c.variant), -_kld(c.variant)))
    best = min(_kld(c.variant) for c in fast_enough)
    close = [c for c in fast_enough if _kld(c.variant) <= best + NEGLIGIBLE_KLD]
    # unknown speeds (CPU not measured yet) tie at 0: the smaller file is then the faster one
    return max(close, key=lambda c: (_tps(c), -c.variant.weights.total, -_kld(c.variant)))


def _accuracy_reason(c: Config, chosen: Config, speed_floor: float) -> str | None:
    """Why c lost when measured accuracy decided; None when accuracy does not explain it."""
    if c.variant.accuracy is None or chosen.variant.accuracy is None:
        return None
    da = _acc(c.variant) - _acc(chosen.variant)
    if da > NEGLIGIBLE_ACCURACY and _tps(c) < speed_floor:
        return f"more accurate but too slow here: {_tps(c):.1f} tokens/s, under half of {2 * speed_floor:.1f}"
    if da < -NEGLIGIBLE_ACCURACY:
        return f"lower task accuracy: {_acc(c.variant) * 100:.1f}% vs {_acc(chosen.variant) * 100:.1f}%"
    if _tps(c) < _tps(chosen):
        return f"slower ({_tps(c):.1f} vs {_tps(chosen):.1f} tokens/s) for an accuracy difference under " \
               f"{NEGLIGIBLE_ACCURACY * 100:g} point"
    return None


def _reason(c: Config | None, chosen: Config, *, useful: int, wishes: Wishes, budget: Budget, smallest: Config,
            speed_floor: float, accuracy: bool = False) -> str:
    if c is None:
        return f"does not fit even with {smallest.context} tokens and a {smallest.kv_type} KV cache: " \
               f"needs {_needs(smallest, budget)}"
    if _kld(c.variant) > USABLE_KLD >= _kld(chosen.variant):
        return f"quality too low for reasoning (mean KLD {_kld(c.variant):.4f}); used only when nothing else fits"
    if c.context < useful and wishes.context is None:
        return f"fits only {c.context} tokens of context (a useful minimum is {useful})"
    if wishes.min_tokens_per_s is not None and _tps(c) < wishes.min_tokens_per_s:
        return f"too slow: {_tps(c):.1f} tokens/s predicted, {wishes.min_tokens_per_s:g} wanted"
    explained = _accuracy_reason(c, chosen, speed_floor) if accuracy else None
    if explained:
        return explained
    dk = _kld(c.variant) - _kld(chosen.variant)
    if dk < -NEGLIGIBLE_KLD and _tps(c) < speed_floor:
        return f"better quality but too slow here: {_tps(c):.1f} tokens/s, under half of {2 * speed_floor:.1f}"
    if dk > NEGLIGIBLE_KLD:
        return f"lower quality: mean KLD {_kld(c.variant):.4f} vs {_kld(chosen.variant):.4f}"
    if _tps(c) < _tps(chosen):
        return f"slower ({_tps(c):.1f} vs {_tps(chosen):.1f} tokens/s) for a quality difference under " \
               f"{NEGLIGIBLE_KLD} KLD"
    if c.context < chosen.context:
        return f"shorter context ({c.context} vs {chosen.context})"
    return "not preferred (quality floor for --prefer speed)"


def make_plan(model: str, shape: ModelShape, variants: Sequence[Variant], hardware: HardwareProfile,
              wishes: Wishes | None = None, *, reasoning: bool = True, smaller_model: str | None = None) -> Plan:
    """Choose how to run `model` on `hardware`; raises NoFitError when no variant fits at all."""
    wishes = wishes or Wishes()
    if wishes.quant:
        variants = [v for v in variants if v.file_type.upper() == wishes.quant.upper()]
        if not variants:
            raise NoFitError(f"no {wishes.quant} variant of {model} is available")
    budget = make_budget(hardware, wishes)
    search = _Search(shape, hardware, budget, wishes)
    useful = wishes.min_context or min(USEFUL_CONTEXT if reasoning else USEFUL_CONTEXT_PLAIN,
                                       shape.context_length or USEFUL_CONTEXT)
    best = {id(v): search.best(v, useful) for v in variants}
    fitting = [c for c in best.values() if c is not None]
    pool = [c for c in fitting if _kld(c.variant) <= USABLE_KLD] or fitting  # Q2_K only as a last resort
    wanted = [c for c in pool if (wishes.context is not None or c.context >= useful)
              and (wishes.min_tokens_per_s is None or _tps(c) >= wishes.min_tokens_per_s)]
    notes: list[str] = []
    trained = shape.context_length
    if wishes.context is not None and trained and wishes.context > trained:
        notes.append(f"{wishes.context} tokens is beyond the {trained} {model} was trained on: "
                     "text past that point may degrade")
    if not wanted and pool:
        wanted = pool
        longest = max(c.context for c in pool)
        cap = min(trained or DEFAULT_MAX_CONTEXT, wishes.max_context)
        if longest < useful and longest >= cap:  # the limit is the model's or the wish's, not memory
            why = f"the {trained} it was trained on" if cap == trained else f"--max-ctx {cap}"
            notes.append(f"{model} is planned with at most {cap} tokens of context ({why}), "
                         f"less than the {useful} wanted")
        elif longest < useful:
            notes.append(f"only {longest} tokens of context fit: long reasoning may be cut off "
                         f"(a smaller model or closing programs would allow {useful})")
        elif wishes.min_tokens_per_s is not None:
            notes.append(f"nothing reaches {wishes.min_tokens_per_s:g} tokens/s; this is the fastest that fits")
    if not wanted:
        cheapest = min((search.smallest(v) for v in variants), key=lambda c: budget.used_ram(c.memory))
        hint = f"a smaller model (e.g. {smaller_model})" if smaller_model else "a smaller model"
        raise NoFitError(
            f"{model} does not fit this machine: its smallest option ({cheapest.variant.file_type}, "
            f"{cheapest.context} tokens, {cheapest.kv_type} KV cache) needs {_needs(cheapest, budget)}; "
            f"use {hint}, a shorter context (--ctx), or close other programs to free memory"
        )
    chosen = _choose(wanted, wishes.prefer)
    floor = SPEED_RATIO * _reference_tps(wanted)
    accuracy = wishes.prefer == "quality" and by_accuracy(_fast_enough(wanted))
    alternatives = tuple(
        Alternative(v, best[id(v)], _reason(best[id(v)], chosen, useful=useful, wishes=wishes, budget=budget,
                                            smallest=search.smallest(v), speed_floor=floor, accuracy=accuracy))
        for v in variants if best[id(v)] is not chosen
    )
    if accuracy and chosen.variant.accuracy is not None:
        notes.append(f"chosen by measured task accuracy rather than KLD: {chosen.variant.accuracy.describe()}")
    elif wishes.prefer == "quality" and any(c.variant.accuracy is not None for c in wanted):
        notes.append("task accuracy is measured for only some of the variants that fit: chosen by KLD "
                     "(run 'localr1 eval LADDER --tasks' for all of them)")
    if chosen.kv_type != "f16":
        notes.append(f"{chosen.kv_type} KV cache: an f16 cache would not fit {chosen.context} tokens")
    if hardware.cpu_speed is not None and hardware.cpu_speed.busy:
        notes.append("this CPU's speed was measured while other programs kept it busy: the predicted speeds "
                     "are too low; run 'localr1 plan --measure' on a quiet machine")
    if chosen.memory.cpu.reclaimable > 0:
        types = ", ".join(sorted(search.repacked))
        notes.append(f"the process will show {_gb(chosen.memory.cpu.reclaimable)} more in RSS: llama.cpp repacks "
                     f"{types} weights for this CPU, and their mapped file pages stay until memory is short")
    if hardware.gpus and not hardware.gpu_offload:
        notes.append("a GPU is present but this llama.cpp build cannot offload to it: rebuild with "
                     "CMAKE_ARGS=\"-DGGML_CUDA=on\" ./setup.sh (or -DGGML_VULKAN=on)")
    if budget.gpus and chosen.n_gpu_layers < shape.layers + 1:
        notes.append(f"{chosen.n_gpu_layers} of {shape.layers + 1} layers fit on the GPU; the CPU runs the rest")
    threads = max(1, hardware.physical_cores)
    names = tuple(g.name for g in hardware.gpus) if budget.gpus else ()
    workers = tuple(g.name for g in hardware.gpus if is_remote(g)) if budget.gpus else ()
    return Plan(model, hardware.name, chosen, threads, budget, alternatives, tuple(notes), names, workers)


def plan_model(model: str, hardware: HardwareProfile, wishes: Wishes | None = None) -> Plan:
    """The plan for a registry key, a .gguf file or a folder of GGUFs on this hardware (what `run` and
    `chat` call when given a key)."""
    from localr1.planner.candidates import model_candidates

    c = model_candidates(model)
    return make_plan(c.name, c.shape, c.variants, hardware, wishes, reasoning=c.reasoning, smaller_model=c.smaller)
