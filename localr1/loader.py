"""Open a model by name or path with its registry defaults and the caller's overrides."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from localr1.engine.params import LoadParams, SamplingParams
from localr1.ggufinfo import read_info
from localr1.registry import ResolvedModel, default_sampling, resolve_model

if TYPE_CHECKING:
    from localr1.engine.engine import Engine


def sampling_for(resolved: ResolvedModel, overrides: dict[str, Any]) -> SamplingParams:
    """The model's recommended sampling (models.toml, or R1/generic defaults) with overrides."""
    entry = resolved.entry
    base = entry.sampling if entry is not None else default_sampling(read_info(resolved.path).is_r1)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def open_engine(model: str, load: LoadParams, sampling_overrides: dict[str, Any] | None = None) -> Engine:
    """Resolve, validate and load a model; llama_cpp is imported here, lazily."""
    from localr1.engine.engine import Engine

    resolved = resolve_model(model)
    engine = Engine(resolved.path, load, sampling_for(resolved, sampling_overrides or {}))
    engine.display_name = resolved.entry.display_name if resolved.entry is not None else None
    return engine
