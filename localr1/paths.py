"""Where localr1 keeps its files; LOCALR1_HOME moves all of them (tests use it)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

HOME_ENV = "LOCALR1_HOME"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Conversations, downloaded and converted models."""
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir("localr1", appauthor=False))


def config_dir() -> Path:
    """The settings file."""
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir("localr1", appauthor=False))


def models_dir() -> Path:
    """Installed models: one folder per model key, holding its GGUF files."""
    return data_dir() / "models"
