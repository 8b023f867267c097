"""The variants a plan chooses from: GGUFs on disk (with measured quality from `quality.json`) or, for a
model not on disk, the standard ladder with reference quality."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localr1.errors import ModelFileError, ModelNotFoundError
from localr1.gguf_header import GGUFHeader, HeaderError, read_header
from localr1.planner.mix import FILE_TYPE_NAMES, FILE_TYPES
from localr1.planner.shape import ModelShape
from localr1.planner.weights import WeightsLayout
from localr1.registry import ModelEntry, installed_keys, installed_path, load_registry, model_folder, variant_files

# Mean KL divergence against F16 from llama.cpp's own Llama-3-8B table (DESIGN.md): the quality figure
# of a variant nobody has measured yet.
REFERENCE_KLD: dict[str, float] = {
    "F16": 0.0, "BF16": 0.0, "Q8_0": 0.0014, "Q6_K": 0.0055, "Q5_K_M": 0.011, "Q4_K_M": 0.031,
    "IQ4_XS": 0.036, "Q3_K_M": 0.10, "Q2_K": 0.45,
}
STANDARD_LADDER = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "Q2_K")
REFERENCE_SOURCE = "reference (llama.cpp's Llama-3-8B table)"
QUALITY_FILE = "quality.json"


@dataclass(frozen=True)
class Accuracy:
    """Task accuracy measured on this file (`localr1 eval --tasks`): the share right and its 95% interval."""

    value: float
    low: float
    high: float
    problems: int
    samples: int
    problem_set: str

    def describe(self) -> str:
        """e.g. "62.5% (48.1-75.0%) on 40 problems of problems.jsonl"."""
        samples = f", {self.samples} samples each" if self.samples > 1 else ""
        return (f"{self.value * 100:.1f}% ({self.low * 100:.1f}-{self.high * 100:.1f}%) on {self.problems} problems "
                f"of {self.problem_set}{samples}")


@dataclass(frozen=True)
class Variant:
    """One quantization of a model: its weights, its quality and where it is (None: not on disk)."""

    file_type: str
    weights: WeightsLayout
    kld: float | None
    kld_source: str
    path: Path | None = None
    file_size: int | None = None
    accuracy: Accuracy | None = None

    @property
    def label(self) -> str:
        """The type, and the file name when on disk."""
        return f"{self.file_type} ({self.path.name})" if self.path else self.file_type


def ladder_variants(shape: ModelShape, types: tuple[str, ...] = STANDARD_LADDER) -> list[Variant]:
    """The standard ladder for a model not on disk: sizes from the mix rule, reference KLD."""
    return [Variant(t, WeightsLayout.from_shape(shape, t), REFERENCE_KLD.get(t), REFERENCE_SOURCE) for t in types]


def _document(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / QUALITY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _accuracy(folder: Path) -> dict[str, Accuracy]:
    """file name -> task accuracy, from the `tasks` section of the folder's quality.json: only complete rows whose
    file still has the size measured (a rebuilt file has not been measured)."""
    tasks = _document(folder).get("tasks")
    if not isinstance(tasks, dict) or not isinstance(tasks.get("models"), list):
        return {}
    found: dict[str, Accuracy] = {}
    for row in tasks["models"]:
        try:
            name, size = Path(row["file"]).name, int(row["size"])
            if row.get("complete") is not True or (folder / name).stat().st_size != size:
                continue
            found[name] = Accuracy(float(row["accuracy"]), float(row["ci_low"]), float(row["ci_high"]),
                                   int(tasks["problems"]), int(tasks["samples"]), Path(str(tasks["source"])).name)
        except (KeyError, TypeError, ValueError, OSError):
            continue
    return found


def _quality(folder: Path) -> dict[str, float]:
    """file name -> measured mean KLD, from the folder's quality.json (the base counts as 0)."""
    data = _document(folder)
    found: dict[str, float] = {}
    base = data.get("base")
    if isinstance(base, dict) and isinstance(base.get("file"), str):
        found[Path(base["file"]).name] = 0.0
    for row in data.get("variants") or []:
        if isinstance(row, dict) and isinstance(row.get("file"), str) and isinstance(row.get("kld_mean"), int | float):
            found[Path(row["file"]).name] = float(row["kld_mean"])
    return found


def file_variant(path: Path, quality: dict[str, float] | None = None,
                 accuracy: dict[str, Accuracy] | None = None) -> tuple[ModelShape, Variant]:
    """A GGUF on disk as a candidate: exact sizes from its header, KLD measured or reference, task accuracy when
    measured."""
    try:
        header = read_header(path)
    except (OSError, ValueError, HeaderError) as exc:
        raise ModelFileError(f"cannot read the GGUF header of {path}: {exc}") from None
    shape = ModelShape.from_header(header)
    problem = _shape_problem(shape, header)
    if problem:
        raise ModelFileError(f"{path} declares an impossible model shape ({problem}); download or convert it again")
    file_type = FILE_TYPE_NAMES.get(int(header.metadata.get("general.file_type") or -1), "unknown")
    measured = (quality or {}).get(path.name)
    kld, source = ((measured, f"measured ({QUALITY_FILE})") if measured is not None
                   else (REFERENCE_KLD.get(file_type), REFERENCE_SOURCE))
    variant = Variant(file_type, WeightsLayout.from_header(header, shape.layers), kld, source, path,
                      path.stat().st_size, (accuracy or {}).get(path.name))
    return shape, variant


def _shape_problem(shape: ModelShape, header: GGUFHeader) -> str | None:
    """What in a header's shape cannot be a real model (llama.cpp would refuse it), or None."""
    for name in ("layers", "hidden", "heads", "kv_heads", "head_dim"):
        if getattr(shape, name) < 1:
            return f"{name} is {getattr(shape, name)}"
    indices = set()
    for tensor in header.tensors:
        if tensor.name.startswith("blk."):
            index = tensor.name.split(".", 2)[1]
            if not index.isdigit():
                return f"tensor {tensor.name!r} names no layer"
            indices.add(int(index))
    if indices and (max(indices) >= shape.layers or shape.layers > max(indices) + 1):
        return f"block_count {shape.layers} but tensors for layers 0 to {max(indices)}"
    return None


def is_reasoning_file(path: Path) -> bool:
    """True when a GGUF carries an R1 chat template (its special tokens)."""
    try:
        template = read_header(path).metadata.get("tokenizer.chat_template")
    except (OSError, ValueError, HeaderError):
        return False
    return isinstance(template, str) and "<｜Assistant｜>" in template


def installed_variants(folder: Path) -> list[tuple[ModelShape, Variant]]:
    """Every model GGUF in a folder, best quality first (measured in its quality.json, else the reference);
    unreadable files and GGUFs that hold no model (an importance matrix) are skipped."""
    quality, accuracy = _quality(folder), _accuracy(folder)
    found = []
    for path in variant_files(folder):
        try:
            shape, variant = file_variant(path, quality, accuracy)
        except ModelFileError:
            continue
        if shape.layers > 0 and variant.weights.total > 0:
            found.append((shape, variant))
    order = {name: i for i, name in enumerate(FILE_TYPES)}
    return sorted(found, key=lambda sv: (sv[1].kld if sv[1].kld is not None else 9.0, order.get(sv[1].file_type, 99)))


@dataclass(frozen=True)
class ModelCandidates:
    """What the planner chooses among for one model, and a smaller model of the family to suggest."""

    name: str
    shape: ModelShape
    variants: list[Variant]
    reasoning: bool
    smaller: str | None = None


def _size(entry: ModelEntry) -> int:
    return ModelShape.from_entry(entry).layer_params * entry.layers


def _smaller(entry: ModelEntry, registry: dict[str, ModelEntry]) -> str | None:
    below = [e for e in registry.values() if e.reasoning == entry.reasoning and _size(e) < _size(entry)]
    return max(below, key=_size).key if below else None


def model_candidates(name_or_path: str) -> ModelCandidates:
    """A registry key (installed variants, else the standard ladder), a .gguf file, or a folder of GGUFs."""
    registry = load_registry()
    entry = registry.get(name_or_path)
    if entry is None:
        installed_key = name_or_path in installed_keys()
        path = model_folder(name_or_path) if installed_key else Path(name_or_path).expanduser()
        if path.is_dir():
            found = installed_variants(path)
            if not found:
                raise ModelNotFoundError(f"no readable .gguf model file in {path}")
            first = found[0][1].path
            return ModelCandidates(name_or_path if installed_key else str(path), found[0][0], [v for _, v in found],
                                   reasoning=first is not None and is_reasoning_file(first))
        if not path.is_file():
            known = ", ".join([*registry, *installed_keys()])
            raise ModelNotFoundError(
                f"unknown model '{name_or_path}': give a .gguf path, a folder of GGUFs or one of {known}"
            )
        shape, variant = file_variant(path, _quality(path.parent), _accuracy(path.parent))
        return ModelCandidates(path.name, shape, [variant], reasoning=is_reasoning_file(path))
    smaller = _smaller(entry, registry)
    if entry.source and entry.source.startswith("package:"):
        packaged = installed_path(entry)
        if packaged is None:
            raise ModelNotFoundError(f"model '{entry.key}' is not installed")
        shape, variant = file_variant(packaged)
        return ModelCandidates(entry.key, shape, [variant], entry.reasoning, smaller)
    folder = model_folder(entry.key)
    found = installed_variants(folder)
    if found:
        return ModelCandidates(entry.key, found[0][0], [v for _, v in found], entry.reasoning, smaller)
    shape = ModelShape.from_entry(entry)
    return ModelCandidates(entry.key, shape, ladder_variants(shape), entry.reasoning, smaller)
