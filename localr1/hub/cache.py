"""The Hugging Face cache layout, shared with every other Hub tool: models--OWNER--NAME/{blobs,snapshots,refs}.

Blobs are named by their ETag (the sha256 for LFS files, the git object id for others); a snapshot folder per commit
holds relative symlinks to the blobs; refs/REVISION holds the commit a branch or tag resolved to.
"""

from __future__ import annotations

import os
from pathlib import Path


def hub_cache_dir() -> Path:
    """Where the Hub cache is, read from the environment now (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def repo_folder(repo: str, cache: Path | None = None) -> Path:
    """The cache folder of a model repo."""
    return (cache or hub_cache_dir()) / ("models--" + repo.replace("/", "--"))


def blob_path(repo: str, etag: str, cache: Path | None = None) -> Path:
    """Where a file's content lives, named by its ETag."""
    return repo_folder(repo, cache) / "blobs" / etag


def snapshot_path(repo: str, commit: str, name: str, cache: Path | None = None) -> Path:
    """A file as it appears at a commit (a symlink to its blob)."""
    return repo_folder(repo, cache) / "snapshots" / commit / name


def link_snapshot(blob: Path, pointer: Path) -> None:
    """Point a snapshot entry at its blob (relative symlink; a copy where links are not allowed)."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if pointer.is_symlink() or pointer.exists():
        pointer.unlink()
    try:
        pointer.symlink_to(os.path.relpath(blob, pointer.parent))
    except OSError:
        import shutil

        shutil.copyfile(blob, pointer)


def write_ref(repo: str, revision: str, commit: str, cache: Path | None = None) -> None:
    """Record which commit a branch or tag resolved to (skipped when the revision is the commit itself)."""
    if revision == commit:
        return
    ref = repo_folder(repo, cache) / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(commit, encoding="utf-8")


def read_ref(folder: Path, revision: str = "main") -> str | None:
    """The commit a repo folder's ref points at, if any."""
    try:
        return (folder / "refs" / revision).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
