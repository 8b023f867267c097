"""What localr1 downloaded or built, so that `rm` removes exactly that: one JSON record per model in the data folder
(repo, resolved commit, each file with its hash and whether localr1 downloaded it or found it already in the Hub
cache), and the links that put a pulled GGUF in the model's folder without copying it."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localr1.atomic_write import write_atomic
from localr1.errors import ConfigError, ModelNotFoundError
from localr1.hub.download import PARTIAL_SUFFIX, Fetched
from localr1.paths import data_dir, models_dir


def records_dir() -> Path:
    """One JSON file per model localr1 pulled."""
    return data_dir() / "pulls"


def check_key(key: str) -> str:
    """A model key names one entry of the models folder: never a path (`..`, `/home/me`, ``) whose removal would
    reach outside it."""
    if not key.strip() or key in (".", "..") or "/" in key or "\\" in key or "\0" in key:
        raise ModelNotFoundError(f"{key!r} is not a model name: give a name as 'localr1 models' lists it")
    return key


def model_folder(key: str) -> Path:
    """models/KEY, for a key that is a plain name."""
    return models_dir() / check_key(key)


def record_path(key: str) -> Path:
    """The pull record of a model."""
    return records_dir() / f"{check_key(key)}.json"


def load_record(key: str) -> dict[str, Any]:
    """The model's pull record ({"pulls": [...]}), empty when there is none."""
    path = record_path(key)
    if not path.exists():
        return {"key": key, "pulls": []}
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc} (delete it; localr1 rm then leaves the Hub cache alone)") \
            from None
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=2))


@dataclass
class Pull:
    """One `localr1 pull` of a model."""

    key: str
    source: str  # gguf | checkpoint
    repo: str
    revision: str
    commit: str
    quant: str | None
    files: list[Fetched] = field(default_factory=list)
    installed: list[Path] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "repo": self.repo, "revision": self.revision, "commit": self.commit,
            "quant": self.quant, "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": [{"name": f.name, "path": str(f.path), "blob": str(f.blob), "size": f.size, "sha256": f.sha256,
                       "etag": f.etag, "downloaded": f.downloaded} for f in self.files],
            "installed": [str(p) for p in self.installed],
        }


def save_pull(pull: Pull) -> Path:
    """Add a pull to its model's record (a file fetched again keeps 'downloaded' if localr1 ever downloaded it)."""
    data = load_record(pull.key)
    ours = {f["blob"] for p in data["pulls"] for f in p.get("files", []) if f.get("downloaded")}
    entry = pull.to_json()
    for f in entry["files"]:
        f["downloaded"] = f["downloaded"] or f["blob"] in ours
    data["pulls"] = [p for p in data["pulls"] if (p.get("repo"), p.get("quant"), p.get("source")) !=
                     (pull.repo, pull.quant, pull.source)] + [entry]
    _write_json(record_path(pull.key), data)
    return record_path(pull.key)


def link_into_models(key: str, files: list[Fetched]) -> list[Path]:
    """Symlink pulled GGUFs into models/KEY/ (the file stays in the Hub cache, shared with other tools)."""
    folder = models_dir() / key
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for f in files:
        link = folder / Path(f.name).name
        if link.is_symlink():
            link.unlink()  # an older pull's link: point it at this one
        if not link.exists():  # a real file of that name stays as it is
            try:
                link.symlink_to(f.path.resolve())
            except OSError:
                continue  # no symlinks here: the Hub cache copy is still found by discovery
        links.append(link)
    return links


@dataclass
class Removal:
    """What `rm` removed (or would remove) and what it left because another tool owns it."""

    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    freed: int = 0


def _remove(path: Path, removal: Removal, dry_run: bool) -> None:
    if path.is_symlink():
        if not dry_run:
            path.unlink()
        removal.removed.append(path)
        return
    if not path.exists():
        return
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*")
                                                          if p.is_file() and not p.is_symlink())
    if not dry_run:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    removal.removed.append(path)
    removal.freed += size


def _prune(folder: Path, stop: Path) -> None:
    """Remove empty folders up to (not including) stop."""
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def remove_model(key: str, *, dry_run: bool = False) -> Removal:
    """Remove models/KEY (links, a ladder built here) and the Hub cache files localr1 downloaded for KEY; files
    that were already in the Hub cache when localr1 pulled (another tool's) stay."""
    removal = Removal()
    folder = model_folder(key)
    data = load_record(key)
    for pull in data["pulls"]:
        for f in pull.get("files", []):
            pointer, blob = Path(f["path"]), Path(f["blob"])
            if f.get("downloaded"):
                _remove(pointer, removal, dry_run)
                _remove(blob, removal, dry_run)
                _remove(blob.with_name(blob.name + PARTIAL_SUFFIX), removal, dry_run)
                if not dry_run:
                    _prune(pointer.parent, blob.parent.parent)
            else:
                removal.kept.append(pointer)
    if folder.is_dir() or folder.is_symlink():
        _remove(folder, removal, dry_run)
    if not dry_run:
        record_path(key).unlink(missing_ok=True)
    return removal
