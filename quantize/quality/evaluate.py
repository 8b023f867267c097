"""Measured quality of every variant against the unquantized base, on held-out text.

Perplexity, mean / median / 99th-percentile KL divergence and top-1 agreement come from one pass over the
held-out text per model; the base is kept only as its top-k log-probabilities (cached in OUT_DIR).
Decode speed is a short greedy generation on this machine.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from localr1.engine.params import default_threads
from localr1.engine.thinking import ThinkingControl
from localr1.errors import ModelFileError
from localr1.ggufinfo import GGUFInfo, read_info
from localr1.oserrors import os_errors
from quantize.errors import EvaluationError, OutputDirError
from quantize.ladder.calibration import load_heldout
from quantize.ladder.manifest import (
    MANIFEST_NAME,
    FileRecord,
    Manifest,
    file_matches,
    load_manifest,
    partial_path,
    resolve_record,
)
from quantize.outlock import locked_dir
from quantize.progress import NullReporter, Reporter
from quantize.quality.metrics import TopK, compare, perplexity, reference_topk
from quantize.runner import Runner

REFERENCE_NAME = "eval-reference.npz"
PARALLEL = 4  # task accuracy: sequences decoded together by default, as `localr1 batch`


@dataclass(frozen=True)
class EvalOptions:
    """How quality is measured: KLD on held-out text (`evaluate_ladder`) or task accuracy (`tasks.evaluate`).
    None means the model's recommendation (models.toml) or the default."""

    types: list[str] | None = None
    threads: int = 0
    # KL divergence, perplexity and speed
    heldout: Path | None = None
    n_ctx: int = 512
    top_k: int = 128
    speed_tokens: int = 64
    speed_prompt: int = 32
    speed_runs: int = 3
    # task accuracy
    tasks: Path | None = None  # None: the problem set shipped with localr1
    limit: int | None = None
    samples: int = 1
    thinking: ThinkingControl = field(default_factory=ThinkingControl)  # the budget: tokens or seconds, as `run`
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int = 0
    context: int | None = None  # per sequence
    parallel: int = PARALLEL  # sequences decoded together


@dataclass
class ModelQuality:
    """One row of the report."""

    name: str
    file: str
    size: int
    bpw: float
    ppl: float
    kld_mean: float
    kld_median: float
    kld_p99: float
    kld_max: float
    top1: float
    decode_tps: float | None
    imatrix: bool


@dataclass
class QualityReport:
    """The whole report, as written to quality.json."""

    base: ModelQuality
    variants: list[ModelQuality]
    heldout: dict[str, Any]
    settings: dict[str, Any]
    llama_cpp: dict[str, str] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)


@dataclass
class Heldout:
    """The held-out text cut into chunks that each fit the context."""

    chunks: list[list[int]]
    sha256: str
    source: str

    @property
    def positions(self) -> int:
        """Predictions scored: every token of a chunk but the first."""
        return sum(len(c) - 1 for c in self.chunks)


def _chunks(runner: Runner, text: str, n_ctx: int) -> list[list[int]]:
    tokens = runner.tokenize(text, add_bos=False)
    lead = [runner.bos] if runner.adds_bos else []
    step = n_ctx - len(lead)
    return [lead + tokens[i:i + step] for i in range(0, len(tokens), step) if len(tokens[i:i + step]) > 1]


def _bpw(info: GGUFInfo) -> float:
    return info.tensor_bytes * 8 / info.parameters if info.parameters else 0.0


def _reference_meta(base_sha: str, heldout: Heldout, options: EvalOptions) -> dict[str, Any]:
    return {"base_sha256": base_sha, "heldout_sha256": heldout.sha256, "n_ctx": options.n_ctx,
            "top_k": options.top_k, "chunks": [len(c) for c in heldout.chunks]}


def _load_reference(path: Path, meta: dict[str, Any]) -> tuple[TopK, float] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            if json.loads(str(data["meta"])) != meta:
                return None
            ref = TopK(data["ids"], data["logprobs"], data["rest"], data["target_logprob"])
            return ref, float(data["decode_tps"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # a damaged cache is recomputed
        return None


def _save_reference(path: Path, ref: TopK, meta: dict[str, Any], tps: float) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, ids=ref.ids, logprobs=ref.logprobs, rest=ref.rest,
                        target_logprob=ref.target_logprob, decode_tps=np.float64(tps), meta=json.dumps(meta))
    temp = partial_path(path)
    try:
        with os_errors("write", path):
            temp.write_bytes(buffer.getvalue())
            os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _targets(chunk: list[int]) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.asarray(chunk[1:], dtype=np.int64)


def _speed(runner: Runner, heldout: Heldout, options: EvalOptions) -> float:
    if options.speed_tokens <= 0:
        return 0.0
    prompt = heldout.chunks[0][: options.speed_prompt]
    steps = min(options.speed_tokens, runner.n_ctx - len(prompt))
    # best of a few runs: other work on the machine only ever slows a run down
    return max(runner.decode_speed(prompt, steps) for _ in range(max(1, options.speed_runs)))


def _base_reference(base: Path, base_sha: str, out_dir: Path, options: EvalOptions, *, text: str, text_sha: str,
                    source: str, reporter: Reporter) -> tuple[Heldout, TopK, ModelQuality]:
    info = read_info(base)
    with Runner(base, n_ctx=options.n_ctx, threads=options.threads) as runner:
        heldout = Heldout(_chunks(runner, text, runner.n_ctx), text_sha, source)
        if not heldout.chunks:
            raise EvaluationError("the held-out text is too short to measure anything (fewer than 2 tokens)")
        meta = _reference_meta(base_sha, heldout, options)
        cached = _load_reference(out_dir / REFERENCE_NAME, meta)
        if cached is not None:
            ref, tps = cached
        else:
            reporter.start("reading held-out text with the base (chunks)", len(heldout.chunks))
            ref = TopK.empty(options.top_k)
            for i, chunk in enumerate(heldout.chunks):
                ref = ref.extend(reference_topk(runner.logits(chunk)[:-1], _targets(chunk), options.top_k))
                reporter.advance(i + 1)
            reporter.finish()
            tps = _speed(runner, heldout, options)
            _save_reference(out_dir / REFERENCE_NAME, ref, meta, tps)
    quality = ModelQuality(
        name=f"{info.file_type} base", file=str(base), size=info.file_size, bpw=round(_bpw(info), 3),
        ppl=perplexity(ref.target_logprob), kld_mean=0.0, kld_median=0.0, kld_p99=0.0, kld_max=0.0, top1=1.0,
        decode_tps=tps or None, imatrix=False,
    )
    return heldout, ref, quality


def evaluate_variant(path: Path, name: str, heldout: Heldout, ref: TopK, options: EvalOptions, *,
                     imatrix: bool) -> ModelQuality:
    """Measure one quantized file against the reference."""
    info = read_info(path)
    kld, match, target = [], [], []
    offset = 0
    with Runner(path, n_ctx=options.n_ctx, threads=options.threads) as runner:
        for chunk in heldout.chunks:
            n = len(chunk) - 1
            part = TopK(ref.ids[offset:offset + n], ref.logprobs[offset:offset + n], ref.rest[offset:offset + n],
                        ref.target_logprob[offset:offset + n])
            result = compare(part, runner.logits(chunk)[:-1], _targets(chunk))
            kld.append(result.kld)
            match.append(result.top1_match)
            target.append(result.target_logprob)
            offset += n
        tps = _speed(runner, heldout, options)
    k = np.concatenate(kld)
    return ModelQuality(
        name=name, file=path.name, size=info.file_size, bpw=round(_bpw(info), 3),
        ppl=perplexity(np.concatenate(target)), kld_mean=float(k.mean()), kld_median=float(np.median(k)),
        kld_p99=float(np.percentile(k, 99)), kld_max=float(k.max()), top1=float(np.concatenate(match).mean()),
        decode_tps=tps or None, imatrix=imatrix,
    )


def ladder_selection(out_dir: Path, types: list[str] | None) -> tuple[Manifest, Path, str, list[str]]:
    """A ladder's manifest, its base file and sha256, and the variants asked for (all when none), checked."""
    manifest = load_manifest(out_dir)
    if manifest is None:
        raise OutputDirError(f"{out_dir} holds no ladder (no manifest.json); run 'localr1 quantize' into it first")
    base, base_sha = base_path(out_dir, manifest)
    names = types or list(manifest.variants)
    unknown = [n for n in names if n not in manifest.variants]
    if unknown:
        raise EvaluationError(f"{', '.join(unknown)} not in this ladder (it has: {', '.join(manifest.variants)})")
    return manifest, base, base_sha, names


def base_path(out_dir: Path, manifest: Manifest) -> tuple[Path, str]:
    """The ladder's base file and its recorded sha256; missing or changed is an error."""
    record = manifest.base.get("file")
    if not record:
        raise OutputDirError(f"{out_dir} has no base model recorded; run 'localr1 quantize' into it first")
    file = FileRecord(**record)
    path = resolve_record(out_dir, file)
    if not file_matches(out_dir, file):
        raise EvaluationError(
            f"the base model {path} is missing or changed since the ladder was built; "
            "restore it or rebuild the ladder"
        )
    return path, file.sha256


def require_ladder(out_dir: Path) -> None:
    """Refuse a folder without a ladder before locking it (a lock file is never left in someone else's folder)."""
    if not (out_dir / MANIFEST_NAME).is_file():
        raise OutputDirError(f"{out_dir} holds no ladder (no manifest.json); run 'localr1 quantize' into it first")


def evaluate_ladder(out_dir: str | Path, options: EvalOptions | None = None,
                    reporter: Reporter | None = None) -> QualityReport:
    """Measure every variant recorded in OUT_DIR's manifest (or options.types) against the base, holding OUT_DIR's
    run lock (a quantize run writing into it makes this fail at once)."""
    out_dir, options = Path(out_dir), options or EvalOptions()
    options = replace(options, threads=options.threads or default_threads())
    require_ladder(out_dir)
    with locked_dir(out_dir, create=False, alternative=None):
        return _evaluate_locked(out_dir, options, reporter or NullReporter())


def _evaluate_locked(out_dir: Path, options: EvalOptions, reporter: Reporter) -> QualityReport:
    manifest, base, base_sha, names = ladder_selection(out_dir, options.types)
    text, text_sha = load_heldout(options.heldout)
    source = str(options.heldout) if options.heldout else "quantize/data/heldout.txt"
    heldout, ref, base_quality = _base_reference(base, base_sha, out_dir, options, text=text, text_sha=text_sha,
                                                 source=source, reporter=reporter)
    rows: list[ModelQuality] = []
    reporter.start("measuring variants", len(names))
    for i, name in enumerate(names):
        record = manifest.variants[name]
        path = resolve_record(out_dir, record.file)
        if not file_matches(out_dir, record.file):
            reporter.note(f"{name}: {path.name} is missing or changed; skipped (rerun quantize to rebuild it)")
            continue
        try:
            rows.append(evaluate_variant(path, name, heldout, ref, options,
                                         imatrix=record.imatrix_sha256 is not None))
        except ModelFileError as exc:
            reporter.note(f"{name}: {exc}; skipped")
        reporter.advance(i + 1)
    reporter.finish()
    if not rows:
        raise EvaluationError(f"no variant of {out_dir} could be measured")
    rows.sort(key=lambda r: -r.size)
    return QualityReport(
        base=base_quality, variants=rows,
        heldout={"source": heldout.source, "sha256": heldout.sha256, "tokens": sum(len(c) for c in heldout.chunks),
                 "positions": heldout.positions, "chunks": len(heldout.chunks),
                 "reference_rest_mass": float(ref.rest.mean())},
        settings={"n_ctx": options.n_ctx, "top_k": options.top_k, "speed_tokens": options.speed_tokens,
                  "speed_prompt": options.speed_prompt, "speed_runs": options.speed_runs,
                  "threads": options.threads},
        llama_cpp=manifest.llama_cpp,
    )
