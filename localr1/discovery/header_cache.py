"""What discovery needs from each GGUF header, cached in the data folder by (path, size, mtime_ns).

Reading a header means reading its whole tokenizer (about 1 s for an R1 vocabulary of 152,064 tokens), so a
listing of a few models took seconds each time. A file that changes (another size or modification time) is read
again; a cache that is missing, unreadable or of another version is started afresh, and one that cannot be
written is simply not kept: the cache only ever saves time.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from localr1.atomic_write import write_atomic
from localr1.ggufinfo import GGUFInfo
from localr1.paths import data_dir

VERSION = 1
CACHE_FILE = "discovery-headers.json"
R1_MARK = "<｜Assistant｜>"  # the R1 chat template's special token


@dataclass(frozen=True)
class HeaderFacts:
    """The header facts that identify a model file."""

    architecture: str
    block_count: int
    embedding_length: int
    file_type: str
    reasoning: bool  # the file carries the R1 chat template

    @classmethod
    def from_info(cls, info: GGUFInfo) -> HeaderFacts:
        """The facts of a header already read."""
        return cls(info.architecture, info.block_count, info.embedding_length, info.file_type,
                   R1_MARK in (info.chat_template or ""))


def cache_path() -> Path:
    """The cache file in the data folder (LOCALR1_HOME moves it)."""
    return data_dir() / CACHE_FILE


def _stamp(path: Path) -> tuple[str, int, int]:
    real = path.resolve()
    st = real.stat()
    return str(real), st.st_size, st.st_mtime_ns


class HeaderCache:
    """Header facts by file, read from disk once per change of the file; `save` writes what changed."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_path()
        self._files: dict[str, dict[str, Any]] = self._load()
        self._changed = False

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        files = data.get("files") if isinstance(data, dict) and data.get("version") == VERSION else None
        return {k: v for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}

    def facts(self, path: Path, read: Callable[[Path], GGUFInfo]) -> HeaderFacts:
        """The facts of `path`: from the cache while its size and mtime match, else read with `read` (its errors
        propagate, and nothing is cached for the file)."""
        key, size, mtime_ns = _stamp(path)
        entry = self._files.get(key)
        if isinstance(entry, dict) and entry.get("size") == size and entry.get("mtime_ns") == mtime_ns:
            with contextlib.suppress(TypeError, ValueError):
                return HeaderFacts(**entry["facts"])
        found = HeaderFacts.from_info(read(path))
        self._files[key] = {"size": size, "mtime_ns": mtime_ns, "facts": asdict(found)}
        self._changed = True
        return found

    def save(self) -> None:
        """Write the cache if it changed, dropping files that are gone; an unwritable folder is not an error."""
        gone = [key for key in self._files if not os.path.exists(key)]
        for key in gone:
            del self._files[key]
        if not (self._changed or gone):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps({"version": VERSION, "files": self._files}, ensure_ascii=False))
        except OSError:
            return
        self._changed = False
