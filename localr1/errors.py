"""User-facing errors: each carries a one-line message saying what is wrong and what to do."""

from __future__ import annotations


class LocalR1Error(Exception):
    """Base of every error a user may see; the CLI prints its message on one line."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ModelFileError(LocalR1Error):
    """A model file is missing, not GGUF, truncated or otherwise unusable."""


class ModelNotFoundError(LocalR1Error):
    """A model name is neither a known model nor a path to a file."""


class ModelLoadError(LocalR1Error):
    """llama.cpp refused to load a file that passed validation."""


class ModelMemoryError(ModelLoadError):
    """llama.cpp could not allocate the memory a load needs (the runtime falls back to a smaller plan)."""


class ContextOverflowError(LocalR1Error):
    """A single message does not fit in the context window."""


class TemplateError(LocalR1Error):
    """The model's chat template could not be rendered."""


class ConfigError(LocalR1Error):
    """A configuration file or option is invalid."""


class FileSystemError(LocalR1Error):
    """The operating system refused a file operation: missing folder, permissions, full or read-only disk."""


class OutputInUseError(LocalR1Error):
    """Another localr1 run holds the lock on an output file or folder."""


class StoreError(LocalR1Error):
    """The conversation database cannot be opened or written (locked, read-only, disk full)."""


class WorkerError(LocalR1Error):
    """An RPC worker cannot be reached, is not a localr1/llama.cpp worker, or went away."""
