"""`localr1 rm MODEL`: remove what localr1 downloaded or built for a model, never another tool's files."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.text import Text

from localr1.errors import ModelNotFoundError


def add_rm_parser(subparsers: Any) -> None:
    """Register `rm` on an argparse subparsers object."""
    p = subparsers.add_parser("rm", help="remove a model localr1 downloaded or built (never another tool's files)")
    p.add_argument("model", help="a model name, as 'localr1 models' lists it")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed, and stop")
    p.set_defaults(handler=rm_command)


def rm_command(args: argparse.Namespace) -> int:
    """Remove models/MODEL and the Hub cache files localr1 downloaded for it; say what stays and why."""
    from localr1.pulled import load_record, model_folder, remove_model

    key = args.model
    if not load_record(key)["pulls"] and not model_folder(key).exists():
        raise ModelNotFoundError(f"localr1 did not download or build '{key}': nothing to remove (copies other tools "
                                 "downloaded are theirs to remove)")
    removal = remove_model(key, dry_run=args.dry_run)
    console = Console()
    verb = "would remove" if args.dry_run else "removed"
    for path in removal.removed:
        console.print(Text(f"{verb} {path}"), soft_wrap=True)
    for path in removal.kept:
        console.print(Text(f"kept {path}: it was in the Hub cache before localr1 pulled it (another tool's)"),
                      soft_wrap=True)
    console.print(Text(f"{verb} {len(removal.removed)} paths, {removal.freed / 1e9:.2f} GB"))
    return 0
