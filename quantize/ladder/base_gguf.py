"""The unquantized base GGUF every variant is made from and measured against."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from localr1.ggufinfo import GGUFInfo, read_info
from quantize.errors import OutputDirError, SourceError
from quantize.ladder.manifest import (
    FileRecord,
    Manifest,
    file_matches,
    partial_path,
    publishing,
    record_file,
    sha256_file,
)
from quantize.ladder.source import Source, check_base
from quantize.progress import Reporter

BASE_TYPES = ("f16", "bf16", "f32")


@dataclass(frozen=True)
class BaseModel:
    """The base file, its facts and its hash."""

    path: Path
    info: GGUFInfo
    sha256: str


def base_file_name(base_type: str) -> str:
    """The converted base's name inside OUT_DIR."""
    return f"base-{base_type.upper()}.gguf"


def _record(manifest: Manifest, out_dir: Path, path: Path, info: GGUFInfo, *, sha: str, converted: bool,
            base_type: str | None) -> None:
    record = record_file(out_dir, path, sha)
    manifest.base = {"file": asdict(record), "file_type": info.file_type, "parameters": info.parameters,
                     "converted": converted, "type": base_type, "source_sha256": manifest.source_id}


def _convert(source: Source, temp: Path, base_type: str,
             free_space: Callable[[Path], int] | None, reporter: Reporter) -> None:
    try:
        from quantize.convert.converter import ConvertProgress, convert
    except ImportError as exc:  # pragma: no cover - the converter ships with the package
        raise SourceError(f"converting checkpoints is not available in this installation ({exc})") from None

    def progress(p: ConvertProgress) -> None:
        reporter.advance(p.bytes_done, p.bytes_total)

    reporter.start(f"converting {source.path.name} to {base_type.upper()}", 1)
    try:
        convert(source.path, temp, outtype=base_type, free_bytes=free_space, progress=progress)
    finally:
        reporter.finish()


def prepare_base(source: Source, out_dir: Path, manifest: Manifest, *, base_type: str, allow_requantize: bool,
                 free_space: Callable[[Path], int] | None, reporter: Reporter) -> BaseModel:
    """A GGUF source is its own base; a checkpoint is converted into OUT_DIR once (and reused on reruns)."""
    if source.kind == "gguf":
        info = check_base(source.path, allow_requantize)
        _record(manifest, out_dir, source.path, info, sha=source.sha256, converted=False, base_type=None)
        manifest.base["file"]["path"] = str(source.path)
        return BaseModel(source.path, info, source.sha256)
    if base_type not in BASE_TYPES:
        raise SourceError(f"unknown base type '{base_type}' (choose from {', '.join(BASE_TYPES)})")
    final = out_dir / base_file_name(base_type)
    old = manifest.base
    if (old.get("converted") and old.get("source_sha256") == source.sha256 and old.get("type") == base_type
            and file_matches(out_dir, FileRecord(**old["file"]))):
        return BaseModel(final, check_base(final, False), str(old["file"]["sha256"]))
    recorded = old.get("file", {}).get("path") == final.name
    if final.exists() and not recorded:
        raise OutputDirError(f"{final} exists but is not in the manifest; move it away or choose another directory")
    temp = partial_path(final).with_suffix(".partial.gguf")
    with publishing(temp, final, out_dir, manifest):
        _convert(source, temp, base_type, free_space, reporter)
        info = check_base(temp, False)
        sha = sha256_file(temp)
        _record(manifest, out_dir, temp, info, sha=sha, converted=True, base_type=base_type)
        manifest.base["file"]["path"] = final.name
    reporter.note(f"converted {source.path.name} to {final.name} ({final.stat().st_size / 1e6:.1f} MB)")
    return BaseModel(final, read_info(final), sha)
