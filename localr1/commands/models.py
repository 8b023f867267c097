"""`localr1 models`: the installed variants with their quality and fit, the model family, every GGUF found on this
disk and where, and (--fit) which distill suits this machine best."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from localr1.commands.pull import DEFAULT_MIN_TPS
from localr1.plaintext import plain

if TYPE_CHECKING:  # imported when the command runs, not when the parser is built
    from localr1.discovery import LocalModel, Scan
    from localr1.pull_choice import FamilyRow

def add_models_parser(subparsers: Any) -> None:
    """Register `models` on an argparse subparsers object."""
    p = subparsers.add_parser("models", help="list the model family, the models on this disk and where they are")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--fit", action="store_true", help="rank every R1 distill for this machine (the planner)")
    p.add_argument("--min-tps", type=float, default=DEFAULT_MIN_TPS,
                   help=f"with --fit: the least decode speed wanted, tokens/s (default: {DEFAULT_MIN_TPS:g})")
    p.add_argument("--hardware", metavar="FILE|PROFILE", help="with --fit: rank for a hardware profile")
    p.add_argument("--measure", action="store_true", help="with --fit: measure this CPU's speed again")
    p.set_defaults(handler=models_command)


def _fit_json(row: FamilyRow) -> dict[str, Any]:
    c = row.choice.plan.config if row.choice and row.choice.plan else None
    return {"key": row.entry.key, "verdict": row.verdict, "reason": row.reason,
            "quant": row.choice.quant if row.choice else None,
            "size_gb": row.choice.size_gb if row.choice else None,
            "repo": row.choice.repo.repo if row.choice and row.choice.repo else None,
            "context": c.context if c else None, "decode_tps": c.speed.decode_tps if c and c.speed else None}


def _where(model: LocalModel) -> str:
    return model.where


def _family_table(found: Scan) -> Table:
    from localr1.registry import installed_path, load_registry

    table = Table(title="the model family")
    table.add_column("name", no_wrap=True)
    for column in ("model", "arch", "layers", "Q4_K_M GB", "on this disk"):
        table.add_column(column)
    for entry in load_registry().values():
        path = installed_path(entry)
        places = sorted({_where(m) for m in found.models if m.key == entry.key})
        here = ", ".join(places) or ("yes" if path else "no")
        cells = (entry.key, entry.display_name, entry.architecture, str(entry.layers),
                 f"{entry.sizes_gb['Q4_K_M']:.2f}" if "Q4_K_M" in entry.sizes_gb else "-", here)
        table.add_row(*(plain(cell, limit=None) for cell in cells))
    return table


def _local_table(found: Scan) -> Table:
    table = Table("name", "model", "family", "quant", "GB", "where found", "path", title="models on this disk")
    for m in found.models:
        cells = (m.name, m.key or "-", m.family, m.quant, f"{m.size / 1e9:.2f}", _where(m), str(m.path))
        table.add_row(*(plain(cell, limit=None) for cell in cells))
    return table


def _fit_table(rows: list[FamilyRow], min_tps: float) -> Table:
    table = Table("model", "verdict", "quant", "GB", "context", "tokens/s", "why",
                  title=f"which distill fits (largest at {min_tps:g}+ tokens/s with a useful context)")
    for row in rows:
        f = _fit_json(row)
        cells = (f["key"], f["verdict"], f["quant"] or "-", f"{f['size_gb']:.2f}" if f["size_gb"] else "-",
                 str(f["context"] or "-"), f"{f['decode_tps']:.1f}" if f["decode_tps"] else "-", f["reason"])
        table.add_row(*(plain(str(cell), limit=None) for cell in cells))
    return table


def models_command(args: argparse.Namespace) -> int:
    """List the family and the local models (and with --fit the ranking); JSON with --json."""
    from localr1.commands.installed_variants import installed_rows, installed_table
    from localr1.discovery import scan
    from localr1.loader import runtime_hardware
    from localr1.registry import load_registry, user_models_path

    console = Console(stderr=args.json)
    registry = load_registry()
    found = scan(registry.values())
    hardware = runtime_hardware()
    installed = installed_rows(hardware)
    rows: list[FamilyRow] | None = None
    if args.fit:
        from localr1.commands.plan import hardware_for
        from localr1.pull_choice import rank_family

        rows = rank_family(hardware_for(args, console), args.min_tps)
    if args.json:
        payload: dict[str, Any] = {
            "hardware": hardware.name,
            "installed": installed,
            "family": [{"key": e.key, "name": e.display_name, "architecture": e.architecture, "layers": e.layers,
                        "checkpoint_repo": e.checkpoint_repo, "license": e.license,
                        "context_length": e.context_length, "gguf_quants": e.gguf_quants(), "origin": e.origin}
                       for e in registry.values()],
            "local": [m.to_json() for m in found.models],
            "warnings": found.warnings,
        }
        if rows is not None:
            payload["fit"] = [_fit_json(r) for r in rows]
        print(json.dumps(payload, indent=2))
        return 0
    if installed:
        console.print(installed_table(installed))
    else:
        console.print(Text("nothing installed yet besides the demo: 'localr1 pull r1' downloads the distill that "
                           "suits this machine"), soft_wrap=True)
    console.print(_family_table(found))
    if found.models:
        console.print(_local_table(found))
    if rows is not None:
        console.print(_fit_table(rows, args.min_tps))
    for warning in found.warnings:
        console.print(plain(f"warning: {warning}"), style="dim", soft_wrap=True)
    console.print(plain(f"your own entries: {user_models_path()}"), style="dim", soft_wrap=True)
    return 0
