"""Where other tools keep GGUFs, and how each names them. Every finder yields (path, name, size) and reports what it
had to skip through `warn`; none reads a model header (scan does, once per file)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from localr1.hub.cache import hub_cache_dir, read_ref

Found = tuple[Path, str, int]  # the file, its name in that place, its size (all parts of a split file)
Warn = Callable[[str], None]
LMSTUDIO_ENV = "LOCALR1_LMSTUDIO_MODELS"
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
OLLAMA_DEFAULT_HOST, OLLAMA_DEFAULT_NAMESPACE = "registry.ollama.ai", "library"
SPLIT_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


def _size(path: Path) -> int:
    """A file's size; for the first part of a split GGUF, all its parts together."""
    split = SPLIT_RE.search(path.name)
    if split is None:
        return path.stat().st_size
    stem, count = path.name[: split.start()], int(split.group(2))
    parts = [path.with_name(f"{stem}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    return sum(p.stat().st_size for p in parts if p.exists())


def _ggufs(root: Path) -> Iterator[Path]:
    """Model GGUFs under a folder (not a split file's later parts, not vision projectors)."""
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*.gguf")):
        split = SPLIT_RE.search(path.name)
        if (split and split.group(1) != "00001") or path.name.lower().startswith("mmproj"):
            continue
        if path.is_file():
            yield path


def in_folder(root: Path, warn: Warn) -> Iterator[Found]:
    """Every GGUF under a folder, named by its path relative to the folder."""
    for path in _ggufs(root):
        try:
            yield path, str(path.relative_to(root)), _size(path)
        except OSError as exc:
            warn(f"skipped {path}: {exc.strerror or exc}")


def hub_cache(warn: Warn) -> Iterator[Found]:
    """GGUFs in the Hugging Face cache, named OWNER/REPO/FILE; the snapshot refs/main points at comes first."""
    cache = hub_cache_dir()
    if not cache.is_dir():
        return
    for folder in sorted(cache.glob("models--*")):
        repo = folder.name.removeprefix("models--").replace("--", "/", 1)
        snapshots = folder / "snapshots"
        if not snapshots.is_dir():
            continue
        main = read_ref(folder)
        ordered = sorted(snapshots.iterdir(), key=lambda s: (s.name != main, s.name))
        for snapshot in ordered:
            for path, relative, size in in_folder(snapshot, warn):
                yield path, f"{repo}/{relative}", size


def lm_studio_roots() -> list[Path]:
    """LM Studio's models folders: LOCALR1_LMSTUDIO_MODELS if set, else its current and its older default."""
    override = os.environ.get(LMSTUDIO_ENV)
    if override:
        return [Path(override).expanduser()]
    home = Path.home()
    return [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]


def lm_studio(warn: Warn) -> Iterator[Found]:
    """GGUFs in LM Studio's folders, named PUBLISHER/REPO/FILE as LM Studio shows them."""
    for root in lm_studio_roots():
        yield from in_folder(root, warn)


def ollama_root() -> Path:
    """Ollama's models folder (OLLAMA_MODELS, else ~/.ollama/models)."""
    override = os.environ.get("OLLAMA_MODELS")
    return Path(override).expanduser() if override else Path.home() / ".ollama" / "models"


def _ollama_name(manifest: Path, manifests: Path) -> str:
    parts = manifest.relative_to(manifests).parts  # host/namespace/model/tag
    if len(parts) != 4:
        return "/".join(parts)
    host, namespace, model, tag = parts
    if (host, namespace) == (OLLAMA_DEFAULT_HOST, OLLAMA_DEFAULT_NAMESPACE):
        return f"{model}:{tag}"
    return f"{host}/{namespace}/{model}:{tag}"


def ollama(warn: Warn) -> Iterator[Found]:
    """Ollama's GGUF blobs, found through its manifests (the model layer's digest names blobs/sha256-HEX) and named
    MODEL:TAG as `ollama list` shows them; a manifest that cannot be read is skipped with a warning."""
    root = ollama_root()
    manifests = root / "manifests"
    if not manifests.is_dir():
        return
    for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
        name = _ollama_name(manifest, manifests)
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            layers = data["layers"]
            digest = next(layer["digest"] for layer in layers if layer.get("mediaType") == OLLAMA_MODEL_LAYER)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, StopIteration, AttributeError):
            warn(f"skipped Ollama model {name}: its manifest {manifest} cannot be read (no model layer)")
            continue
        if not isinstance(digest, str) or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            warn(f"skipped Ollama model {name}: its manifest {manifest} has a malformed digest")
            continue
        blob = root / "blobs" / digest.replace(":", "-")
        if not blob.is_file():
            warn(f"skipped Ollama model {name}: its blob {blob.name} is missing")
            continue
        yield blob, name, blob.stat().st_size
