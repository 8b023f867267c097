"""What to download, decided by the planner before any byte moves: the best GGUF a repo publishes for this machine
(`pull KEY`), and the best distill of the family (`pull r1`, `models --fit`): the largest that decodes at or above a
speed wish (5 tokens/s by default) with a useful context."""

from __future__ import annotations

from dataclasses import dataclass

from localr1.errors import ModelNotFoundError
from localr1.hardware import HardwareProfile
from localr1.plan import USEFUL_CONTEXT, USEFUL_CONTEXT_PLAIN, NoFitError, Plan, Wishes, make_plan
from localr1.planner.candidates import STANDARD_LADDER, ladder_variants
from localr1.planner.shape import ModelShape
from localr1.registry import ModelEntry, load_registry
from localr1.registry_schema import GGUFFile, GGUFRepo

DEFAULT_MIN_TPS = 5.0
FAMILY = "r1"


@dataclass(frozen=True)
class Choice:
    """A model, the quant to get and where from, with the plan that chose it."""

    entry: ModelEntry
    quant: str
    plan: Plan | None  # None: the user named the quant
    repo: GGUFRepo | None  # None: quantized here from the checkpoint
    file: GGUFFile | None

    @property
    def size_gb(self) -> float | None:
        """The download's size (the registry's figure), or the planned weights when quantized here."""
        if self.file:
            return self.file.size_gb
        return self.plan.config.variant.weights.total / 1e9 if self.plan else None


def plannable_types(entry: ModelEntry, checkpoint: bool) -> list[str]:
    """Quant types the planner may choose: what a GGUF repo publishes, or the whole ladder when quantizing here."""
    if checkpoint:
        return list(STANDARD_LADDER)
    published = set(entry.gguf_quants())
    return [t for t in STANDARD_LADDER if t in published]


def plan_download(entry: ModelEntry, hardware: HardwareProfile, wishes: Wishes, *, checkpoint: bool = False) -> Plan:
    """The planner's choice among the types that can be downloaded (or built) for this entry."""
    types = plannable_types(entry, checkpoint)
    if not types:
        raise ModelNotFoundError(f"models.toml names no GGUF of '{entry.key}' that localr1 can plan: give --quant, or "
                                 "use --source checkpoint")
    shape = ModelShape.from_entry(entry)
    return make_plan(entry.key, shape, ladder_variants(shape, tuple(types)), hardware, wishes,
                     reasoning=entry.reasoning)


def source_of(entry: ModelEntry, quant: str) -> tuple[GGUFRepo, GGUFFile]:
    """The first GGUF repo that publishes this quant type."""
    for repo in entry.gguf:
        for name, file in repo.files.items():
            if name.upper() == quant.upper():
                return repo, file
    offered = ", ".join(entry.gguf_quants()) or "none"
    raise ModelNotFoundError(f"no GGUF repo in models.toml publishes {quant} of '{entry.key}' (offered: {offered}); "
                             f"use --source checkpoint to quantize it here")


def choose(entry: ModelEntry, hardware: HardwareProfile, wishes: Wishes, *, checkpoint: bool = False) -> Choice:
    """The quant `pull KEY --quant auto` gets."""
    plan = plan_download(entry, hardware, wishes, checkpoint=checkpoint)
    quant = plan.config.variant.file_type
    if checkpoint:
        return Choice(entry, quant, plan, None, None)
    repo, file = source_of(entry, quant)
    return Choice(entry, quant, plan, repo, file)


@dataclass(frozen=True)
class FamilyRow:
    """One distill's best plan on this machine and whether it meets the wish."""

    entry: ModelEntry
    choice: Choice | None
    verdict: str  # chosen | runner-up | ok | too slow | short context | does not fit
    reason: str = ""


def _params(entry: ModelEntry) -> int:
    return ModelShape.from_entry(entry).layer_params * entry.layers


def rank_family(hardware: HardwareProfile, min_tps: float = DEFAULT_MIN_TPS,
                wishes: Wishes | None = None) -> list[FamilyRow]:
    """Every R1 distill with a GGUF source, largest first, marked chosen / runner-up / why not."""
    wishes = wishes or Wishes(min_tokens_per_s=min_tps)
    entries = sorted((e for e in load_registry().values() if e.reasoning and e.gguf), key=_params, reverse=True)
    rows: list[FamilyRow] = []
    for entry in entries:
        try:
            choice = choose(entry, hardware, wishes)
        except NoFitError as exc:
            rows.append(FamilyRow(entry, None, "does not fit", str(exc)))
            continue
        assert choice.plan is not None
        c = choice.plan.config
        tps = c.speed.decode_tps if c.speed else 0.0
        useful = USEFUL_CONTEXT if entry.reasoning else USEFUL_CONTEXT_PLAIN
        if c.context < useful:
            rows.append(FamilyRow(entry, choice, "short context", f"only {c.context} tokens of context fit"))
        elif tps < min_tps:
            rows.append(FamilyRow(entry, choice, "too slow", f"{tps:.1f} tokens/s, {min_tps:g} wanted"))
        else:
            rows.append(FamilyRow(entry, choice, "ok"))
    good = [i for i, r in enumerate(rows) if r.verdict == "ok"]
    if not good:  # nothing meets the wish: the fastest that fits, so there is still an answer
        fitting = [i for i, r in enumerate(rows) if r.choice is not None]
        good = sorted(fitting, key=lambda i: -_tps(rows[i]))[:2]
    for rank, i in enumerate(good[:2]):
        row = rows[i]
        rows[i] = FamilyRow(row.entry, row.choice, "chosen" if rank == 0 else "runner-up", row.reason)
    return rows


def _tps(row: FamilyRow) -> float:
    c = row.choice.plan.config if row.choice and row.choice.plan else None
    return c.speed.decode_tps if c and c.speed else 0.0


def family_choice(hardware: HardwareProfile, min_tps: float = DEFAULT_MIN_TPS) -> tuple[FamilyRow, FamilyRow | None]:
    """(the distill `pull r1` gets, the runner-up)."""
    rows = rank_family(hardware, min_tps)
    chosen = next((r for r in rows if r.verdict == "chosen"), None)
    if chosen is None:
        raise NoFitError("no R1 distill fits this machine: close other programs, or plan one with 'localr1 plan'")
    return chosen, next((r for r in rows if r.verdict == "runner-up"), None)
