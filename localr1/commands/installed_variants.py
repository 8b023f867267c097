"""Every installed variant of localr1's models: its size, measured quality and how it fits this machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from localr1.errors import LocalR1Error
from localr1.hardware import HardwareProfile
from localr1.plaintext import plain
from localr1.plan import NoFitError, make_plan
from localr1.planner.candidates import ModelCandidates, Variant, model_candidates
from localr1.registry import installed_keys, installed_path, load_registry


@dataclass(frozen=True)
class Fit:
    """How one variant fits this machine, from the planner."""

    fits: bool
    text: str
    context: int | None = None
    gpu_layers: int = 0
    layers: int = 0
    kv_type: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"fits": self.fits, "text": self.text, "context": self.context, "gpu_layers": self.gpu_layers,
                "layers": self.layers, "kv_type": self.kv_type}


def variant_fit(c: ModelCandidates, v: Variant, hardware: HardwareProfile) -> Fit:
    """The planner's best way to run this one variant here, in words."""
    try:
        plan = make_plan(c.name, c.shape, [v], hardware, reasoning=c.reasoning)
    except NoFitError:
        return Fit(False, "does not fit")
    cfg = plan.config
    if not plan.budget.gpus:
        where = "fits in RAM"
    elif cfg.n_gpu_layers >= plan.slots:
        where = "fits entirely on the GPU"
    else:
        where = f"fits with {cfg.n_gpu_layers} of {plan.slots} layers on the GPU"
    kv = f", {cfg.kv_type} KV" if cfg.kv_type != "f16" else ""
    return Fit(True, f"{where}, {cfg.context} tokens{kv}", cfg.context, cfg.n_gpu_layers, plan.slots, cfg.kv_type)


def _chosen(key: str, hardware: HardwareProfile) -> Path | None:
    from localr1.plan import plan_model

    try:
        return plan_model(key, hardware).config.variant.path
    except LocalR1Error:
        return None


def installed_rows(hardware: HardwareProfile) -> list[dict[str, Any]]:
    """One row per installed variant: key, type, file, size, mean KLD (measured or reference), fit, chosen."""
    registry = load_registry()
    keys = [e.key for e in registry.values() if installed_path(e) is not None] + installed_keys()
    rows: list[dict[str, Any]] = []
    for key in keys:
        try:
            candidates = model_candidates(key)
        except LocalR1Error:
            continue
        chosen = _chosen(key, hardware)
        for v in candidates.variants:
            rows.append({
                "key": key, "type": v.file_type, "file": str(v.path) if v.path else None,
                "size": v.file_size, "kld": v.kld, "kld_measured": v.kld_source.startswith("measured"),
                "fit": variant_fit(candidates, v, hardware).as_dict(),
                "chosen": v.path is not None and v.path == chosen,
            })
    return rows


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _kld(row: dict[str, Any]) -> str:
    if row["kld"] is None:
        return "-"
    return f"{row['kld']:.4f}" + ("" if row["kld_measured"] else " (ref.)")


def installed_table(rows: list[dict[str, Any]]) -> Table:
    """The installed variants as a table (every name as plain text)."""
    table = Table("key", "type", "file", "size", "mean KLD", "on this machine",
                  title="installed variants (* the planner's pick)")
    for row in rows:
        name = Path(row["file"]).name if row["file"] else "-"
        table.add_row(plain(("* " if row["chosen"] else "  ") + row["key"]), plain(row["type"]), plain(name),
                      _size(row["size"]), _kld(row), plain(row["fit"]["text"]))
    return table
