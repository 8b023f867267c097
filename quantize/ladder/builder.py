"""The quantization ladder: source → unquantized base GGUF → importance matrix → one GGUF per type, with a manifest.

Every output is written under a temporary name, checked, recorded, and only then renamed into place; a rerun
skips what is complete and valid and redoes the rest.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localr1.errors import ModelFileError
from localr1.ggufinfo import GGUFInfo, read_info
from quantize.errors import DiskSpaceError, ImatrixRequiredError, OutputDirError, QuantizeError
from quantize.ladder.base_gguf import BaseModel, prepare_base
from quantize.ladder.imatrix import Imatrix, ImatrixCArray
from quantize.ladder.imatrix_source import obtain_imatrix
from quantize.ladder.manifest import (
    FileRecord,
    Manifest,
    VariantRecord,
    claim_output_dir,
    file_matches,
    inspect_output_dir,
    now,
    partial_path,
    publishing,
    record_file,
    save_manifest,
    sha256_file,
)
from quantize.ladder.options import LadderOptions
from quantize.ladder.qtypes import QuantType
from quantize.ladder.quantizer import QuantizeOptions, estimate_size, quantize_file
from quantize.ladder.source import check_base, describe_source
from quantize.ladder.versions import llama_cpp_versions
from quantize.outlock import locked_dir
from quantize.progress import NullReporter, Reporter

FreeSpace = Callable[[Path], int]
DISK_MARGIN = 64 * 1024 * 1024


@dataclass(frozen=True)
class VariantOutcome:
    """What happened to one type in this run."""

    type: str
    path: Path
    status: str  # built | rebuilt | skipped
    size: int
    seconds: float


@dataclass
class LadderResult:
    """The ladder after a run."""

    out_dir: Path
    manifest: Manifest
    base: Path
    outcomes: list[VariantOutcome]
    imatrix: Path | None


def _stem(info: GGUFInfo, name: str | None) -> str:
    raw = name or info.name or info.path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-.") or "model"


def free_disk_space(path: Path) -> int:
    """Free bytes on the file system holding path."""
    return shutil.disk_usage(path).free


def check_disk(out_dir: Path, needed: int, free_space: FreeSpace | None, what: str) -> None:
    """Refuse before writing when the outputs would not fit (with a small margin)."""
    free = (free_space or free_disk_space)(out_dir)
    if free < needed + DISK_MARGIN:
        raise DiskSpaceError(
            f"not enough disk space in {out_dir}: {what} needs about {needed / 1e9:.2f} GB "
            f"(+{DISK_MARGIN // 2**20} MB margin) but {free / 1e9:.2f} GB are free; "
            "free some space, drop some --types, or choose another -o"
        )


def uses_imatrix(qtype: QuantType) -> bool:
    """Whether the quantizer reads the importance matrix for this type (not for float copies and Q8_0)."""
    return not qtype.is_float and qtype.name != "Q8_0"


def _variant_current(out_dir: Path, qtype: QuantType, record: VariantRecord | None, *, source_id: str,
                     options: dict[str, Any], imatrix_sha: str | None, rehash: bool) -> bool:
    if record is None or record.source_sha256 != source_id or record.options != options:
        return False
    expected_imatrix = imatrix_sha if uses_imatrix(qtype) else None
    if record.imatrix_sha256 != expected_imatrix or not file_matches(out_dir, record.file, rehash):
        return False
    try:
        read_info(out_dir / record.file.path)
    except ModelFileError:
        return False
    return True


def _plan(out_dir: Path, manifest: Manifest, types: list[QuantType], *, stem: str, options: dict[str, Any],
          imatrix_sha: str | None, rehash: bool) -> tuple[list[QuantType], dict[str, Path]]:
    """Which types need work, and the final path of every type; refuses to overwrite files that are not ours."""
    paths = {t.name: out_dir / f"{stem}-{t.name}.gguf" for t in types}
    pending = []
    for qtype in types:
        record = manifest.variants.get(qtype.name)
        if _variant_current(out_dir, qtype, record, source_id=manifest.source_id, options=options,
                            imatrix_sha=imatrix_sha, rehash=rehash):
            continue
        final = paths[qtype.name]
        ours = record is not None and record.file.path == final.name
        if final.exists() and not ours:
            raise OutputDirError(
                f"{final} exists but is not in {out_dir.name}'s manifest (someone else's file?); "
                "move it away or choose another output directory"
            )
        pending.append(qtype)
    return pending, paths


def _parameters(options: LadderOptions) -> dict[str, Any]:
    """The run's settings as the manifest records them (each variant also keeps the options it was built with)."""
    return {"threads": options.quantize.threads, **options.quantize.as_dict(), "use_imatrix": options.use_imatrix,
            "imatrix_file": str(options.imatrix_file) if options.imatrix_file else None,
            "base_type": options.base_type, "types": [t.name for t in options.types]}


def _new_manifest(source: dict[str, Any]) -> Manifest:
    return Manifest(source=source, base={}, llama_cpp=llama_cpp_versions(), parameters={})


def _quantize_one(base: Path, final: Path, qtype: QuantType, options: QuantizeOptions, *,
                  imatrix: ImatrixCArray | None, reporter: Reporter) -> tuple[str, Path]:
    """Quantize into a temporary file, validate it, hash it; returns (sha256, temporary path)."""
    temp = partial_path(final)
    try:
        reporter.start(f"quantizing {qtype.name}", 1)
        quantize_file(base, temp, qtype, options, imatrix=imatrix,
                      on_tensor=lambda i, n, _name: reporter.advance(i, n))
        info = read_info(temp)
        if info.file_type not in (qtype.name, f"ALL_{qtype.name}"):
            raise QuantizeError(f"llama.cpp wrote a {info.file_type} file when {qtype.name} was asked for")
        reporter.start(f"hashing {qtype.name}", temp.stat().st_size)
        done = [0]

        def count(n: int) -> None:
            done[0] += n
            reporter.advance(done[0])

        return sha256_file(temp, count), temp
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        reporter.finish()


def build_ladder(source_path: str | Path, out_dir: str | Path, options: LadderOptions, *,
                 free_space: FreeSpace | None = None, reporter: Reporter | None = None) -> LadderResult:
    """Build (or complete) the ladder of `options.types` from a source into out_dir, holding out_dir's run lock:
    a second run on the same folder fails at once, naming this one."""
    reporter = reporter or NullReporter()
    source_path, out_dir = Path(source_path), Path(out_dir)
    if not options.use_imatrix and options.imatrix_file is None:
        needing = [t.name for t in options.types if t.needs_imatrix]
        if needing:
            raise ImatrixRequiredError(
                f"{', '.join(needing)} need an importance matrix: drop --no-imatrix or give one with --imatrix FILE"
            )
    inspect_output_dir(out_dir)  # refuse someone else's directory without touching it
    with locked_dir(out_dir, create=True):
        return _build_locked(source_path, out_dir, options, free_space=free_space, reporter=reporter)


def _build_locked(source_path: Path, out_dir: Path, options: LadderOptions, *,
                  free_space: FreeSpace | None, reporter: Reporter) -> LadderResult:
    previous = inspect_output_dir(out_dir)  # again, now that no other run can change it
    source = describe_source(source_path, previous.source if previous else None, reporter)
    if source.kind == "gguf":
        check_base(source.path, options.quantize.allow_requantize)  # a bad source leaves OUT_DIR untouched
    manifest = claim_output_dir(out_dir, source.sha256) or _new_manifest(source.to_json())
    manifest.source = source.to_json()
    manifest.llama_cpp = llama_cpp_versions()
    manifest.parameters = {**_parameters(options), "stem": manifest.parameters.get("stem")}
    save_manifest(out_dir, manifest)

    base: BaseModel = prepare_base(source, out_dir, manifest, base_type=options.base_type,
                                   allow_requantize=options.quantize.allow_requantize, free_space=free_space,
                                   reporter=reporter)
    save_manifest(out_dir, manifest)
    stem = str(manifest.parameters.get("stem") or _stem(base.info, options.name))
    manifest.parameters["stem"] = stem
    qopts = options.quantize.as_dict()
    want_imatrix = options.use_imatrix or options.imatrix_file is not None
    known_imatrix = manifest.imatrix.get("sha256") if manifest.imatrix and want_imatrix else None
    pending, paths = _plan(out_dir, manifest, options.types, stem=stem, options=qopts,
                           imatrix_sha=known_imatrix, rehash=options.rehash)
    estimates = {t.name: estimate_size(base.path, t, options.quantize) for t in pending}
    if pending:
        check_disk(out_dir, sum(estimates.values()), free_space, f"quantizing {', '.join(estimates)}")

    imatrix: Imatrix | None = None
    imatrix_path: Path | None = None
    # Asked for even when every variant looks done: a different --imatrix file or calibration makes
    # the variants built with the old matrix stale. A matrix that still matches is reused, not collected.
    if want_imatrix and any(uses_imatrix(t) for t in options.types):
        imatrix, imatrix_path = obtain_imatrix(base, out_dir, manifest, options, reporter)
        save_manifest(out_dir, manifest)
        if imatrix.sha256() != known_imatrix:
            pending, paths = _plan(out_dir, manifest, options.types, stem=stem, options=qopts,
                                   imatrix_sha=imatrix.sha256(), rehash=options.rehash)
            extra = {t.name: estimate_size(base.path, t, options.quantize) for t in pending if t.name not in estimates}
            if extra:
                estimates.update(extra)
                check_disk(out_dir, sum(estimates[t.name] for t in pending), free_space,
                           f"quantizing {', '.join(t.name for t in pending)}")
    imatrix_c = ImatrixCArray(imatrix) if imatrix is not None else None
    imatrix_sha = imatrix.sha256() if imatrix is not None else known_imatrix

    outcomes: list[VariantOutcome] = []
    for qtype in options.types:
        final = paths[qtype.name]
        if qtype not in pending:
            record = manifest.variants[qtype.name]
            outcomes.append(VariantOutcome(qtype.name, final, "skipped", record.file.size, 0.0))
            reporter.note(f"{qtype.name}: already built ({final.name})")
            continue
        rebuilt = qtype.name in manifest.variants
        started = time.perf_counter()
        given = imatrix_c if uses_imatrix(qtype) else None
        sha, temp = _quantize_one(base.path, final, qtype, options.quantize, imatrix=given, reporter=reporter)
        seconds = time.perf_counter() - started
        with publishing(temp, final, out_dir, manifest):
            written = record_file(out_dir, temp, sha)
            file = FileRecord(final.name, written.size, sha, written.mtime_ns)
            manifest.variants[qtype.name] = VariantRecord(
                type=qtype.name, file=file, source_sha256=manifest.source_id,
                imatrix_sha256=imatrix_sha if given is not None else None,
                options=qopts, seconds=round(seconds, 3), created=now(), llama_cpp=manifest.llama_cpp,
            )
        status = "rebuilt" if rebuilt else "built"
        outcomes.append(VariantOutcome(qtype.name, final, status, file.size, seconds))
        reporter.note(f"{qtype.name}: {status} {final.name} ({file.size / 1e6:.1f} MB, {seconds:.1f} s)")
    return LadderResult(out_dir, manifest, base.path, outcomes, imatrix_path)
