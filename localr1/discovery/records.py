"""A GGUF found on disk, and which model of the registry it is (from its header, not its file name)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from localr1.discovery.header_cache import R1_MARK, HeaderFacts

__all__ = ["R1_MARK", "SOURCE_NAMES", "Identity", "LocalModel", "identify", "record"]


class Identity(Protocol):
    """What identifies a registry model in a GGUF header (models.toml's entries have these fields)."""

    @property
    def key(self) -> str: ...
    @property
    def architecture(self) -> str: ...
    @property
    def layers(self) -> int: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def reasoning(self) -> bool: ...


SOURCE_NAMES = {"localr1": "localr1", "hub-cache": "Hugging Face cache", "lm-studio": "LM Studio", "ollama": "Ollama",
                "folder": "folder (settings)"}


@dataclass(frozen=True)
class LocalModel:
    """One model file on disk."""

    name: str  # as the place names it: an Ollama tag, a Hub repo and file, a path under a folder
    key: str | None  # the registry model it is, when its shape and template match one
    family: str  # the architecture (qwen2, llama, ...)
    quant: str
    size: int
    path: Path
    source: str  # localr1 | hub-cache | lm-studio | ollama | folder
    reasoning: bool

    @property
    def where(self) -> str:
        """Where it was found, in words (LM Studio, Ollama, the Hugging Face cache...)."""
        return SOURCE_NAMES.get(self.source, self.source)

    def to_json(self) -> dict[str, object]:
        """The record as `localr1 models --json` prints it."""
        return {"name": self.name, "key": self.key, "family": self.family, "quant": self.quant, "size": self.size,
                "path": str(self.path), "source": self.source, "reasoning": self.reasoning}


def identify(info: HeaderFacts, known: Iterable[Identity]) -> tuple[str | None, bool]:
    """(registry key or None, whether it carries the R1 template). A reasoning entry needs the R1 template: its base
    model (Qwen2.5-Math, Llama 3.1) has the same shape."""
    reasoning = info.reasoning
    for entry in known:
        if (entry.architecture, entry.layers, entry.hidden_size) == (info.architecture, info.block_count,
                                                                     info.embedding_length) \
                and entry.reasoning == reasoning:
            return entry.key, reasoning
    return None, reasoning


def record(path: Path, name: str, source: str, info: HeaderFacts, known: Iterable[Identity], *,
           size: int) -> LocalModel:
    """A LocalModel from a header already read."""
    key, reasoning = identify(info, known)
    return LocalModel(name, key, info.architecture, info.file_type, size, path, source, reasoning)
