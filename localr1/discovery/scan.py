"""Every place at once: each file read once (a file reached twice, through a link or a shared blob, is listed
where it was found first), identified against the registry."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from localr1.discovery import sources
from localr1.discovery.header_cache import HeaderCache
from localr1.discovery.records import Identity, LocalModel, record
from localr1.errors import LocalR1Error
from localr1.ggufinfo import read_info
from localr1.paths import models_dir

SOURCE_ORDER = ("localr1", "hub-cache", "lm-studio", "ollama", "folder")


@dataclass
class Scan:
    """What was found, and what was skipped and why."""

    models: list[LocalModel] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _places(folders: Iterable[Path], warn: sources.Warn) -> Iterator[tuple[str, Iterator[sources.Found]]]:
    root = models_dir()
    yield "localr1", sources.in_folder(root, warn)
    yield "hub-cache", sources.hub_cache(warn)
    yield "lm-studio", sources.lm_studio(warn)
    yield "ollama", sources.ollama(warn)
    for folder in folders:
        if not folder.is_dir():
            warn(f"skipped {folder}: not a folder (named in the settings' model_folders)")
            continue
        yield "folder", ((p, str(p), s) for p, _name, s in sources.in_folder(folder, warn))


def _settings_folders() -> list[Path]:
    from localr1.settings import load_settings

    return [Path(f).expanduser() for f in load_settings().model_folders]


def scan(known: Iterable[Identity], folders: Iterable[Path] | None = None) -> Scan:
    """Every GGUF in every place; unreadable files are skipped with a warning. Headers are read once per change
    of the file (localr1.discovery.header_cache)."""
    known = list(known)
    result = Scan()
    warn: Callable[[str], None] = result.warnings.append
    seen: set[Path] = set()
    cache = HeaderCache()
    for source, found in _places(_settings_folders() if folders is None else folders, warn):
        for path, name, size in found:
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            try:
                facts = cache.facts(path, read_info)
            except (LocalR1Error, OSError) as exc:
                warn(f"skipped {path}: {exc}")
                continue
            result.models.append(record(path, name, source, facts, known, size=size))
    cache.save()
    return result


def find_local(key: str, known: Iterable[Identity], folders: Iterable[Path] | None = None) -> list[LocalModel]:
    """The copies of one registry model on this disk, localr1's own first."""
    found = [m for m in scan(known, folders).models if m.key == key]
    return sorted(found, key=lambda m: SOURCE_ORDER.index(m.source))
