"""`localr1 models`: every installed variant with its size, measured quality and how it fits this machine,
then the model family of models.toml."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from localr1.errors import LocalR1Error
from localr1.hardware import HardwareProfile
from localr1.plan import NoFitError, make_plan
from localr1.planner.candidates import ModelCandidates, Variant, model_candidates
from localr1.registry import installed_keys, installed_path, load_registry, variant_files


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


def family_rows() -> list[dict[str, Any]]:
    """models.toml's entries, with how many variants of each are installed."""
    rows = []
    for e in load_registry().values():
        path = installed_path(e)
        count = 0 if path is None else (1 if path.is_file() else len(variant_files(path)))
        rows.append({"key": e.key, "name": e.display_name, "architecture": e.architecture, "layers": e.layers,
                     "q4_k_m_gb": e.sizes_gb.get("Q4_K_M"), "installed_variants": count})
    return rows


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _kld(row: dict[str, Any]) -> str:
    if row["kld"] is None:
        return "-"
    return f"{row['kld']:.4f}" + ("" if row["kld_measured"] else " (ref.)")


def models_command(as_json: bool = False) -> int:
    """Print the installed variants and the family (every name as plain text)."""
    from localr1.loader import runtime_hardware

    hardware = runtime_hardware()
    installed, family = installed_rows(hardware), family_rows()
    if as_json:
        print(json.dumps({"hardware": hardware.name, "installed": installed, "family": family}, indent=2))
        return 0
    console = Console()
    table = Table("key", "type", "file", "size", "mean KLD", "on this machine",
                  title="installed variants (* the planner's pick)")
    for row in installed:
        name = Path(row["file"]).name if row["file"] else "-"
        table.add_row(Text(("* " if row["chosen"] else "  ") + row["key"]), Text(row["type"]), Text(name),
                      _size(row["size"]), _kld(row), Text(row["fit"]["text"]))
    if installed:
        console.print(table)
    else:
        console.print(Text("no model installed yet besides the demo: 'localr1 quantize CHECKPOINT' installs one"))
    fam = Table("name", "model", "arch", "layers", "Q4_K_M GB", "installed", title="the model family (models.toml)")
    for row in family:
        cells = (row["key"], row["name"], row["architecture"], str(row["layers"]),
                 "-" if row["q4_k_m_gb"] is None else f"{row['q4_k_m_gb']:.2f}",
                 f"{row['installed_variants']} variant(s)" if row["installed_variants"] else "no")
        fam.add_row(*(Text(cell) for cell in cells))
    console.print(fam)
    return 0
