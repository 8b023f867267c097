"""`localr1 pull MODEL`: a ready GGUF from the Hub (the quant the planner picks for this machine, or --quant), or the
safetensors checkpoint quantized here (--source checkpoint). `pull r1` picks the distill too. Files land in the Hub
cache shared with other tools; the model's folder gets links (or the ladder built here) and a record says what
localr1 downloaded, for `localr1 rm`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from localr1.errors import ConfigError, ModelNotFoundError

if TYPE_CHECKING:  # the modules behind these are imported when the command runs, not when the parser is built
    from localr1.hub.client import RepoSnapshot
    from localr1.hub.download import Fetched
    from localr1.pull_choice import Choice, FamilyRow
    from localr1.registry import ModelEntry

FAMILY = "r1"
DEFAULT_MIN_TPS = 5.0  # localr1.pull_choice.DEFAULT_MIN_TPS (a test keeps them equal)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
CHECKPOINT_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json", "model.safetensors.index.json")


def add_pull_parser(subparsers: Any) -> None:
    """Register `pull` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "pull", help="download a model from the Hugging Face Hub (the variant that suits this machine)",
        description="Download a GGUF of a model (the planner picks the quant for this machine unless --quant says), "
                    "or its checkpoint to quantize here. 'pull r1' picks the distill too.")
    p.add_argument("model", help=f"a model name from 'localr1 models', or '{FAMILY}' for the best distill here")
    p.add_argument("--quant", default="auto",
                   help="auto (default: the planner's choice), a type such as Q4_K_M; with --source checkpoint also "
                        "a comma-separated list or 'all' for the whole ladder")
    p.add_argument("--source", choices=("gguf", "checkpoint"), default="gguf",
                   help="gguf: a ready GGUF (default); checkpoint: the safetensors checkpoint, quantized here")
    p.add_argument("--min-tps", type=float, default=DEFAULT_MIN_TPS,
                   help=f"for '{FAMILY}': the least decode speed wanted, tokens/s (default: {DEFAULT_MIN_TPS:g})")
    p.add_argument("--hardware", metavar="FILE|PROFILE", help="choose for a hardware profile instead of this machine")
    p.add_argument("--measure", action="store_true", help="measure this CPU's speed again before choosing")
    p.add_argument("--dry-run", action="store_true", help="show what would be downloaded, and stop")
    p.add_argument("--no-eval", action="store_true", help="with --source checkpoint: skip the quality report")
    p.set_defaults(handler=pull_command)


def _entry(name: str) -> ModelEntry:
    from localr1.registry import load_registry

    registry = load_registry()
    entry = registry.get(name)
    if entry is None:
        known = ", ".join(k for k, e in registry.items() if e.gguf or e.reasoning)
        raise ModelNotFoundError(f"unknown model '{name}': pull one of {FAMILY}, {known} (or add an entry to "
                                 "models.toml in the config folder)")
    if entry.source and entry.source.startswith("package:"):
        raise ModelNotFoundError(f"'{name}' ships with localr1 (a Python package): nothing to download")
    return entry


def _describe(choice: Choice) -> str:
    where = f"from {choice.repo.repo}" if choice.repo else "quantized here from the checkpoint"
    size = f" ({choice.size_gb:.2f} GB)" if choice.size_gb is not None else ""
    text = f"{choice.entry.key} {choice.quant}{size} {where}"
    if choice.plan is None:
        return text
    c = choice.plan.config
    speed = f", {c.speed.decode_tps:.1f} tokens/s predicted" if c.speed else ""
    return f"{text}: {c.context} tokens of context{speed}"


def _row(row: FamilyRow | None) -> str:
    if row is None or row.choice is None:
        return "none"
    return _describe(row.choice)


def _hardware(args: argparse.Namespace, console: Console) -> Any:
    from localr1.commands.plan import hardware_for

    return hardware_for(args, console)


def _choose(args: argparse.Namespace, console: Console) -> Choice:
    from localr1.plan import Wishes
    from localr1.pull_choice import Choice, choose, family_choice, source_of

    checkpoint = args.source == "checkpoint"
    if args.model == FAMILY:
        chosen, runner_up = family_choice(_hardware(args, console), args.min_tps)
        assert chosen.choice is not None
        console.print(Text(f"best R1 distill here: {_row(chosen)}"), soft_wrap=True)
        console.print(Text(f"runner-up: {_row(runner_up)}"), style="dim", soft_wrap=True)
        if not checkpoint:
            return chosen.choice
        args.model = chosen.entry.key
    entry = _entry(args.model)
    if args.quant.lower() == "auto":
        choice = choose(entry, _hardware(args, console), Wishes(), checkpoint=checkpoint)
        console.print(Text(f"chose {_describe(choice)}"), soft_wrap=True)
        return choice
    if checkpoint:
        return Choice(entry, args.quant, None, None, None)
    repo, file = source_of(entry, args.quant)
    return Choice(entry, args.quant.upper(), None, repo, file)


class _Bars:
    """One rich progress bar per file, on stderr."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=False)
        self.tasks: dict[str, Any] = {}

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(Path(name).name, total=total)
        self.progress.update(self.tasks[name], completed=done, total=total)


def _download(snapshot: RepoSnapshot, names: list[str], console: Console) -> list[Fetched]:
    from localr1.hub.download import check_space, fetch_file

    missing = [n for n in names if n not in snapshot.files]
    if missing:
        raise ModelNotFoundError(f"{snapshot.repo} at commit {snapshot.commit[:12]} has no {', '.join(missing)}: the "
                                 "repo changed; fix the entry in models.toml")
    needed = check_space(snapshot, names)
    console.print(Text(f"{snapshot.repo} at commit {snapshot.commit[:12]}: {needed / 1e9:.2f} GB to download"),
                  style="dim", soft_wrap=True)
    bars = _Bars(console)
    with bars.progress:
        return [fetch_file(snapshot, name, progress=bars) for name in names]


def _pull_gguf(choice: Choice, console: Console) -> int:
    from localr1.hub.client import repo_snapshot
    from localr1.pulled import Pull, link_into_models, save_pull

    assert choice.repo is not None and choice.file is not None
    snapshot = repo_snapshot(choice.repo.repo, choice.repo.revision)
    fetched = _download(snapshot, list(choice.file.files), console)
    links = link_into_models(choice.entry.key, fetched)
    record = save_pull(Pull(choice.entry.key, "gguf", snapshot.repo, snapshot.revision, snapshot.commit, choice.quant,
                            fetched, links))
    console.print(Text(f"ready: {fetched[0].path}\nrecorded in {record}; run it with: localr1 chat --model "
                       f"{choice.entry.key}"), soft_wrap=True)
    return 0


def checkpoint_files(snapshot: RepoSnapshot) -> list[str]:
    """What conversion needs (config, tokenizer, safetensors and their index); never a pickle file."""
    names = [n for n in snapshot.files if n in CHECKPOINT_FILES or n.endswith(".safetensors")]
    if not any(n.endswith(".safetensors") for n in names):
        pickles = [n for n in snapshot.files if n.endswith(PICKLE_SUFFIXES)]
        extra = f" (only pickle files: {', '.join(pickles[:3])}, which localr1 never loads)" if pickles else ""
        raise ModelNotFoundError(f"{snapshot.repo} has no safetensors weights{extra}")
    if "config.json" not in names:
        raise ModelNotFoundError(f"{snapshot.repo} has no config.json: not a Hugging Face checkpoint")
    return sorted(names)


def _types(choice: Choice) -> str:
    from quantize.ladder.qtypes import DEFAULT_LADDER

    if choice.quant.lower() == "all":
        return ",".join(DEFAULT_LADDER)
    return choice.quant


def _pull_checkpoint(choice: Choice, args: argparse.Namespace, console: Console) -> int:
    from localr1.hub.cache import snapshot_path
    from localr1.hub.client import repo_snapshot
    from localr1.paths import models_dir
    from localr1.pulled import Pull, save_pull
    from quantize.ladder import LadderOptions, build_ladder
    from quantize.ladder.qtypes import parse_types
    from quantize.outlock import locked_dir
    from quantize.progress import RichReporter

    types = parse_types(_types(choice))
    entry = choice.entry
    snapshot = repo_snapshot(entry.checkpoint_repo)
    fetched = _download(snapshot, checkpoint_files(snapshot), console)
    checkpoint = snapshot_path(snapshot.repo, snapshot.commit, "config.json").parent  # the commit's snapshot
    out = models_dir() / entry.key
    pull = Pull(entry.key, "checkpoint", snapshot.repo, snapshot.revision, snapshot.commit, ",".join(t.name for t in
                                                                                                   types), fetched,
                [out])
    save_pull(pull)  # the download is recorded even if quantizing is interrupted
    with locked_dir(out, create=True):
        with RichReporter() as reporter:
            result = build_ladder(checkpoint, out, LadderOptions(types=types, name=entry.display_name),
                                  reporter=reporter)
        built = sum(o.status != "skipped" for o in result.outcomes)
        console.print(Text(f"{built} built, {len(result.outcomes) - built} already complete in {out}"))
        if not args.no_eval:
            _evaluate(out, [t.name for t in types], console)
    console.print(Text(f"ready: {out}; run it with: localr1 chat --model {entry.key}"), soft_wrap=True)
    return 0


def _evaluate(out: Path, types: list[str], console: Console) -> None:
    from quantize.progress import RichReporter
    from quantize.quality import EvalOptions
    from quantize.quality.evaluate import evaluate_ladder
    from quantize.quality.report import CHART_NAME, png_chart, quality_table, write_report

    with RichReporter() as reporter:
        report = evaluate_ladder(out, EvalOptions(types=types, speed_tokens=16), reporter)
    write_report(out, report)
    png_chart(report, out / CHART_NAME)
    console.print(quality_table(report))


def pull_command(args: argparse.Namespace) -> int:
    """Choose, check the disk, download, install, record."""
    from localr1.hub.client import require_online

    require_online()  # offline: fail at once, before measuring or planning anything
    if args.source == "gguf" and "," in args.quant:
        raise ConfigError("--quant takes one type for a GGUF download (a list only with --source checkpoint)")
    console = Console(stderr=True)
    choice = _choose(args, console)
    if args.dry_run:
        print(_describe(choice))
        return 0
    if args.source == "checkpoint":
        return _pull_checkpoint(choice, args, console)
    return _pull_gguf(choice, console)
