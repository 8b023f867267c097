"""Open a model by name or path with its registry defaults and the caller's overrides."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from localr1.engine.params import LoadParams, SamplingParams
from localr1.ggufinfo import read_info
from localr1.registry import ResolvedModel, default_sampling, resolve_model

if TYPE_CHECKING:
    from localr1.engine.engine import Engine
    from localr1.engine.port import ChatEngine


def sampling_for(resolved: ResolvedModel, overrides: dict[str, Any]) -> SamplingParams:
    """The model's recommended sampling (models.toml, or R1/generic defaults) with overrides."""
    entry = resolved.entry
    base = entry.sampling if entry is not None else default_sampling(read_info(resolved.path).is_r1)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def open_engine(model: str, load: LoadParams, sampling_overrides: dict[str, Any] | None = None) -> Engine:
    """Resolve, validate and load a model; llama_cpp is imported here, lazily."""
    from localr1.engine.engine import Engine

    resolved = resolve_model(model)
    return Engine(resolved.path, load, sampling_for(resolved, sampling_overrides or {}))


def open_chat_engine(model: str, load: LoadParams, sampling_overrides: dict[str, Any] | None = None) -> ChatEngine:
    """`open_engine`, or with RPC workers the model in a child process (a lost worker aborts llama.cpp).

    Workers are probed first (an unreachable one is a one-line error); without a layer count from the
    user or a plan, the layers are shared between this machine and the workers by the memory each has free.
    """
    if not load.workers:
        return open_engine(model, load, sampling_overrides)
    import psutil

    from localr1.engine.isolated import IsolatedEngine
    from localr1.planner.remote import default_split
    from localr1.workers import parse_endpoint, probe_workers

    resolved = resolve_model(model)
    infos = probe_workers(tuple(parse_endpoint(w) for w in load.workers))
    if load.gpu_layers == 0 and not load.tensor_split:
        layers, split = default_split(read_info(resolved.path).block_count, psutil.virtual_memory().available,
                                      [i.free for i in infos])
        load = replace(load, gpu_layers=layers, tensor_split=split)
    return IsolatedEngine(resolved.path, load, sampling_for(resolved, sampling_overrides or {}), probed=True)
