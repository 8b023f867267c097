"""The machine profile: memory, cores, GPUs and measured speed, probed here or loaded from JSON.

Every probe degrades to "no such device" when a tool or file is missing: a profile is always returned.
Apple silicon: the GPU shares RAM and Metal lets it wire at most its recommendedMaxWorkingSetSize, which
macOS sets to about 2/3 of RAM up to 36 GB and 3/4 above; `iogpu.wired_limit_mb`, when set, wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import psutil

from localr1.atomic_write import write_atomic
from localr1.errors import ConfigError
from localr1.gpu_specs import gpu_spec

PROFILES_DIR = Path(__file__).with_name("profiles")
GiB = 2**30
_INTERESTING_FLAGS = frozenset({
    "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
    "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "sve", "i8mm",
})
_TOOL_TIMEOUT = 10


@dataclass(frozen=True)
class GPU:
    """One GPU: memory in bytes, decode bandwidth (bytes/s) and prompt compute (FLOP/s)."""

    name: str
    vendor: str
    total: int
    free: int
    bandwidth: float
    flops: float
    unified: bool = False
    spec_known: bool = True


@dataclass(frozen=True)
class CPUSpeed:
    """This CPU's measured speed: effective bytes/s per ggml tensor type while decoding, FLOP/s per type
    while processing a prompt, the fixed costs of a token (per token, per layer, and per matrix row by type),
    and the types llama.cpp repacks into an anonymous buffer at load on this CPU (their weights are held twice
    in RSS)."""

    type_bandwidth: dict[str, float]
    type_flops: dict[str, float]
    token_overhead_s: float
    layer_overhead_s: float
    ram_bandwidth: float
    threads: int
    source: str
    repacked_types: tuple[str, ...] = ()
    busy: bool = False  # other work competed for the cores while measuring: the figures are too low
    type_row_s: dict[str, float] = field(default_factory=dict)  # seconds per matrix row a decode step reads
    type_prompt_row_s: dict[str, float] = field(default_factory=dict)  # the same per prompt token
    attention_flops: float = 0.0  # FLOP/s of a prompt's attention (0: not measured, the matrices' rate)
    prompt_layer_overhead_s: float = 0.0  # a prompt token's fixed cost per layer (norms, activations...)


@dataclass(frozen=True)
class HardwareProfile:
    """Everything the planner knows about a machine."""

    name: str
    os: str
    cpu_model: str
    physical_cores: int
    logical_cpus: int
    ram_total: int
    ram_available: int
    cpu_flags: tuple[str, ...] = ()
    disk_free: int | None = None
    gpus: tuple[GPU, ...] = ()
    gpu_offload: bool = False
    cpu_speed: CPUSpeed | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the format `--hardware FILE` reads)."""
        data = asdict(self)
        data["format"] = "localr1.hardware"
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], origin: str = "hardware profile") -> HardwareProfile:
        """Build a profile from its JSON form; a wrong or missing field is a ConfigError naming it."""
        try:
            values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
            flags = values.get("cpu_flags", ())
            if isinstance(flags, str):
                raise TypeError("'cpu_flags' must be a list, not a string")
            values["cpu_flags"] = tuple(flags)
            values["gpus"] = tuple(GPU(**g) for g in values.get("gpus", ()))
            speed = values.get("cpu_speed")
            if speed:
                speed = {**speed, "repacked_types": tuple(speed.get("repacked_types", ()))}
            values["cpu_speed"] = CPUSpeed(**speed) if speed else None
            profile = cls(**values)
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{origin} is not a valid hardware profile ({exc}); see localr1/profiles/") from None
        problem = profile_problem(profile)
        if problem:
            raise ConfigError(f"{origin}: {problem}; see localr1/profiles/")
        return profile


def _whole(value: object, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


MAX_RATE = 1e18  # bytes or FLOP per second: far above any machine; a larger figure is a typo or garbage
MIN_RATE = 1e6  # a measured rate below a megabyte (or megaFLOP) per second is a broken measurement
MAX_SECONDS = 1.0  # a fixed cost per token, layer or matrix row above a second is garbage


def _real(value: object, *, positive: bool, ceiling: float = math.inf, floor: float = 0.0) -> bool:
    """A finite number (not a bool) within the bounds: above `floor` when positive, else from 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        number = float(value)  # an integer too large for a float raises OverflowError
    except OverflowError:
        return False
    if not math.isfinite(number) or number > ceiling:
        return False
    return number > 0 and number >= floor if positive else number >= 0


def _rate(value: object) -> bool:
    return _real(value, positive=True, ceiling=MAX_RATE, floor=MIN_RATE)


def _seconds(value: object) -> bool:
    return _real(value, positive=False, ceiling=MAX_SECONDS)


def speed_problem(speed: CPUSpeed) -> str | None:
    """What is wrong with a measured speed (a zero, negative, non-finite or absurd figure), or None."""
    for table, check, what in (("type_bandwidth", _rate, "a positive number (1e6 to 1e18 per second)"),
                               ("type_flops", _rate, "a positive number (1e6 to 1e18 per second)"),
                               ("type_row_s", _seconds, "a non-negative number of seconds (at most 1)"),
                               ("type_prompt_row_s", _seconds, "a non-negative number of seconds (at most 1)")):
        values = getattr(speed, table)
        if not isinstance(values, dict) or not all(check(v) for v in values.values()):
            return f"cpu_speed '{table}' must map each type to {what}"
    if not _rate(speed.ram_bandwidth):
        return "cpu_speed 'ram_bandwidth' must be a positive number (1e6 to 1e18 bytes per second)"
    if not (speed.attention_flops == 0 or _rate(speed.attention_flops)) or isinstance(speed.attention_flops, bool):
        return "cpu_speed 'attention_flops' must be 0 (not measured) or a number from 1e6 to 1e18 FLOP per second"
    for name in ("token_overhead_s", "layer_overhead_s", "prompt_layer_overhead_s"):
        if not _seconds(getattr(speed, name)):
            return f"cpu_speed '{name}' must be a non-negative number of seconds (at most 1)"
    if not _whole(speed.threads, 1):
        return "cpu_speed 'threads' must be a positive integer"
    return None


def profile_problem(profile: HardwareProfile) -> str | None:
    """What is wrong with a profile's figures (wrong type, zero, negative, NaN), or None."""
    for name in ("ram_total", "ram_available", "physical_cores", "logical_cpus"):
        if not _whole(getattr(profile, name), 1):
            return f"'{name}' must be a positive integer"
    if not all(isinstance(f, str) for f in profile.cpu_flags):
        return "'cpu_flags' must be a list of strings"
    for i, gpu in enumerate(profile.gpus):
        if not (_whole(gpu.total, 1) and _whole(gpu.free, 0) and gpu.free <= gpu.total):
            return f"GPU {i}: 'total' must be a positive integer and 'free' an integer from 0 to 'total'"
        if not (_rate(gpu.bandwidth) and _rate(gpu.flops)):
            return f"GPU {i}: 'bandwidth' and 'flops' must be positive numbers (1e6 to 1e18 per second)"
    if not isinstance(profile.extra, dict) or not isinstance(profile.extra.get("loopback_workers", []), list):
        return "'extra' must be a JSON object (its 'loopback_workers' a list of worker names)"
    return speed_problem(profile.cpu_speed) if profile.cpu_speed is not None else None


def shipped_profiles() -> list[str]:
    """Names of the profiles that ship with localr1."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.json"))


def load_profile(name_or_path: str) -> HardwareProfile:
    """A shipped profile by name, or a JSON file written by `localr1 plan --save-hardware` or by hand."""
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        shipped = PROFILES_DIR / f"{name_or_path}.json"
        if not shipped.is_file():
            raise ConfigError(
                f"no hardware profile '{name_or_path}': give a JSON file or one of {', '.join(shipped_profiles())}"
            )
        path = shipped
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read hardware profile {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"hardware profile {path} must hold a JSON object")
    return HardwareProfile.from_json(data, origin=str(path))


# ---- probing ------------------------------------------------------------------------------------


def _run(args: list[str]) -> str | None:
    """A tool's standard output, or None when it is missing, fails or hangs."""
    exe = shutil.which(args[0])
    if exe is None:
        return None
    try:
        result = subprocess.run([exe, *args[1:]], capture_output=True, text=True, timeout=_TOOL_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _cpuinfo(proc: Path) -> tuple[str, tuple[str, ...]]:
    text = _read(proc / "cpuinfo") or ""
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "Hardware") and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model or platform.processor() or platform.machine(), tuple(sorted(flags & _INTERESTING_FLAGS))


def _nvidia_gpus() -> list[GPU]:
    out = _run(["nvidia-smi", "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"])
    gpus = []
    for line in (out or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            continue
        try:
            total, free = int(float(parts[1])) * 2**20, int(float(parts[2])) * 2**20
        except ValueError:
            continue
        spec = gpu_spec(parts[0], "nvidia")
        gpus.append(GPU(parts[0], "nvidia", total, free, spec.bandwidth, spec.flops, spec_known=spec.known))
    return gpus


def _amd_gpus(sys_root: Path) -> list[GPU]:
    gpus = []
    for card in sorted((sys_root / "class" / "drm").glob("card[0-9]*")):
        device = card / "device"
        if _read(device / "vendor") != "0x1002" or "-" in card.name:
            continue
        total_text, used_text = _read(device / "mem_info_vram_total"), _read(device / "mem_info_vram_used")
        if not total_text or not total_text.isdigit():
            continue
        total = int(total_text)
        used = int(used_text) if used_text and used_text.isdigit() else 0
        name = _read(device / "product_name") or f"AMD GPU {_read(device / 'device') or card.name}"
        spec = gpu_spec(name, "amd")
        gpus.append(GPU(name, "amd", total, max(0, total - used), spec.bandwidth, spec.flops, spec_known=spec.known))
    return gpus


def apple_working_set(ram: int, wired_limit_mb: int = 0) -> int:
    """Bytes Metal lets the GPU use: iogpu.wired_limit_mb when set, else 2/3 of RAM up to 36 GiB, 3/4 above."""
    if wired_limit_mb > 0:
        return min(ram, wired_limit_mb * 2**20)
    return ram * 2 // 3 if ram <= 36 * GiB else ram * 3 // 4


def _apple(ram: int) -> tuple[str, int, list[GPU]]:
    chip = (_run(["sysctl", "-n", "machdep.cpu.brand_string"]) or "").strip()
    limit_text = (_run(["sysctl", "-n", "iogpu.wired_limit_mb"]) or "").strip()
    memsize = (_run(["sysctl", "-n", "hw.memsize"]) or "").strip()
    if memsize.isdigit():
        ram = int(memsize)
    if not chip.startswith("Apple"):
        return chip, ram, []
    limit = apple_working_set(ram, int(limit_text) if limit_text.isdigit() else 0)
    spec = gpu_spec(chip, "apple")
    return chip, ram, [GPU(f"{chip} GPU", "apple", limit, limit, spec.bandwidth, spec.flops, unified=True,
                           spec_known=spec.known)]


def _gpu_offload() -> bool:
    try:
        from localr1.engine.devices import gpu_offload_supported
    except (ImportError, OSError):
        return False
    try:
        return gpu_offload_supported()
    except OSError:
        return False


def _disk_free(folder: Path) -> int | None:
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def probe(models_folder: Path | None = None, *, sys_root: Path = Path("/sys"), proc_root: Path = Path("/proc"),
          system: str | None = None, check_offload: bool = True) -> HardwareProfile:
    """This machine's profile (speed not included: see `with_cached_speed`)."""
    from localr1.paths import models_dir

    system = system or platform.system()
    memory = psutil.virtual_memory()
    ram_total, ram_available = int(memory.total), int(memory.available)
    cpu_model, flags = _cpuinfo(proc_root)
    gpus: list[GPU] = []
    if system == "Darwin":
        chip, ram_total, gpus = _apple(ram_total)
        cpu_model = chip or cpu_model
        ram_available = min(ram_available, ram_total)
    else:
        gpus = _nvidia_gpus() + _amd_gpus(sys_root)
    physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return HardwareProfile(
        name="this machine", os=system.lower(), cpu_model=cpu_model, physical_cores=int(physical),
        logical_cpus=os.cpu_count() or int(physical), ram_total=ram_total, ram_available=ram_available,
        cpu_flags=flags, disk_free=_disk_free(models_folder or models_dir()), gpus=tuple(gpus),
        gpu_offload=_gpu_offload() if check_offload and gpus else False,
    )


def with_speed(profile: HardwareProfile, speed: CPUSpeed | None) -> HardwareProfile:
    """The same profile with a measured speed attached."""
    return replace(profile, cpu_speed=speed)


# ---- the measured speed, cached per CPU and llama.cpp build ------------------------------------


def _build_id() -> str:
    """llama-cpp-python's version and its libraries' sizes and times (a rebuild changes the kernels)."""
    import importlib.metadata
    import importlib.util

    try:
        version = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    spec = importlib.util.find_spec("llama_cpp")
    stamps = []
    if spec is not None and spec.submodule_search_locations:
        lib_dir = Path(next(iter(spec.submodule_search_locations))) / "lib"
        for lib in sorted(lib_dir.glob("*ggml*")) + sorted(lib_dir.glob("*llama*")):
            with contextlib.suppress(OSError):
                stat = lib.stat()
                stamps.append(f"{lib.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return f"{version}|{'|'.join(stamps)}"


SPEED_MEASUREMENT = "3"  # what the calibration measures: 2 added the costs per matrix row, 3 the attention rate


def speed_cache_path(profile: HardwareProfile, threads: int) -> Path:
    """Where this CPU's measured speed is kept: keyed by CPU model, its flags, the llama.cpp build, threads and
    what the calibration measures."""
    from localr1.paths import data_dir

    key = "|".join([profile.cpu_model, ",".join(profile.cpu_flags), _build_id(), str(threads), SPEED_MEASUREMENT])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return data_dir() / "speed" / f"cpu-{digest}.json"


def cached_speed(profile: HardwareProfile, threads: int) -> CPUSpeed | None:
    """The cached measurement for this machine, or None (never measured, other build, unreadable)."""
    try:
        data = json.loads(speed_cache_path(profile, threads).read_text(encoding="utf-8"))
        speed = CPUSpeed(**{**data, "repacked_types": tuple(data.get("repacked_types", ()))})
    except (OSError, ValueError, TypeError):
        return None
    return None if speed_problem(speed) else speed


def save_speed(profile: HardwareProfile, speed: CPUSpeed) -> Path:
    """Cache a measurement (written whole or not at all)."""
    path = speed_cache_path(profile, speed.threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(speed), indent=2))  # two measurements at once: the last one wins whole
    return path
