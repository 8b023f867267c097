"""User settings in a TOML file in the platform's config folder."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import tomli_w

from localr1.atomic_write import write_atomic
from localr1.budget import check_loop_mode, parse_budget
from localr1.errors import ConfigError
from localr1.paths import config_dir
from localr1.presets import check_preset


@dataclass(frozen=True)
class Settings:
    """What the chat app remembers between runs. None means the model's own default."""

    model: str = "demo"
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    context_size: int | None = None  # None: the planner's choice for the model and this machine
    show_thinking: bool = True
    workers: str | None = None  # RPC workers, "host:port,host:port" (see `localr1 worker`)
    use_mlock: bool = False  # lock the weights in RAM (needs RLIMIT_MEMLOCK of the model's size)
    model_folders: tuple[str, ...] = ()  # more folders of GGUFs for `localr1 models` and model names
    think_budget: str = ""  # "2000" tokens or "90s"; empty: unlimited (a conversation may set its own)
    loop_guard: str = "act"
    preset: str = "plain"

    def sampling_overrides(self) -> dict[str, Any]:
        """The sampling values the user set, for the engine loader."""
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}

    def validated(self) -> Settings:
        """Raise ConfigError naming the first value out of range."""
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise ConfigError(f"temperature {self.temperature} is out of range (0 to 2)")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p {self.top_p} is out of range (above 0, at most 1)")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(f"max tokens {self.max_tokens} must be at least 1")
        if self.context_size is not None and not 256 <= self.context_size <= 1_048_576:
            raise ConfigError(f"context size {self.context_size} is out of range (256 to 1048576)")
        if self.workers:
            from localr1.workers import parse_workers

            parse_workers(self.workers)
        parse_budget(self.think_budget)
        check_loop_mode(self.loop_guard)
        check_preset(self.preset)
        return self

    def worker_list(self) -> tuple[str, ...]:
        """The workers as endpoint strings."""
        from localr1.workers import parse_workers

        return tuple(str(e) for e in parse_workers(self.workers or ""))


_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "model": ((str,), "a model name or path"),
    "temperature": ((int, float), "a number"),
    "top_p": ((int, float), "a number"),
    "max_tokens": ((int,), "a whole number"),
    "context_size": ((int,), "a whole number"),
    "show_thinking": ((bool,), "true or false"),
    "workers": ((str,), 'a list of workers, "host:port,host:port"'),
    "use_mlock": ((bool,), "true or false"),
    "model_folders": ((list,), "a list of folder paths"),
    "think_budget": ((str,), 'a budget in tokens or seconds, e.g. "2000" or "90s"'),
    "loop_guard": ((str,), '"off", "warn" or "act"'),
    "preset": ((str,), '"plain", "math" or "code"'),
}


def settings_path() -> Path:
    """config.toml in the config folder."""
    return config_dir() / "config.toml"


def load_settings(path: Path | None = None) -> Settings:
    """Read settings; a missing file gives defaults, a broken one a ConfigError."""
    path = path or settings_path()
    if not path.exists():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read settings {path}: {exc} (fix or delete the file)") from None
    known = {f.name for f in fields(Settings)}
    values = {k: v for k, v in raw.items() if k in known}
    for name, value in values.items():
        kinds, what = _KINDS[name]
        if isinstance(value, bool) is not (bool in kinds) or not isinstance(value, kinds) or (
                isinstance(value, list) and not all(isinstance(v, str) for v in value)):
            raise ConfigError(f"bad settings in {path}: {name} = {value!r} should be {what} (fix or delete the line)")
    if "model_folders" in values:
        values["model_folders"] = tuple(values["model_folders"])
    return Settings(**values).validated()


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write settings atomically; None values are left out (TOML has no null)."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings.validated()).items()
            if v is not None and v != ()}
    write_atomic(path, tomli_w.dumps(data))  # a failed write (disk full) leaves no stray temporary file
    return path
