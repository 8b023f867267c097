"""The ladder's manifest (OUT_DIR/manifest.json): what was built, from what, how; and who owns OUT_DIR."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localr1.oserrors import os_errors
from quantize.errors import OutputDirError
from quantize.outlock import DIR_LOCK_NAME, INFO_SUFFIX, is_lock_artifact

FORMAT = "localr1.quantize-ladder"
VERSION = 1
MANIFEST_NAME = "manifest.json"
PARTIAL_PREFIX = "."
PARTIAL_SUFFIX = ".partial"
_CHUNK = 8 * 1024 * 1024


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    """sha256 of a file, read in 8 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return digest.hexdigest()


def partial_path(final: Path) -> Path:
    """Where this process writes a file before it is complete (`.NAME.PID.partial`); never taken as done."""
    return final.with_name(f"{PARTIAL_PREFIX}{final.name}.{os.getpid()}{PARTIAL_SUFFIX}")


def is_partial(path: Path) -> bool:
    """A temporary file left by an interrupted run of ours (`.NAME.partial`, `.NAME.partial.gguf.partial`)."""
    return path.name.startswith(PARTIAL_PREFIX) and PARTIAL_SUFFIX in path.name


@dataclass(frozen=True)
class FileRecord:
    """One file: name (relative to OUT_DIR when inside it), size and sha256."""

    path: str
    size: int
    sha256: str
    mtime_ns: int = 0


@dataclass
class VariantRecord:
    """One finished quantized file and everything that decided its bytes."""

    type: str
    file: FileRecord
    source_sha256: str
    imatrix_sha256: str | None
    options: dict[str, Any]
    seconds: float
    created: str
    llama_cpp: dict[str, str] = field(default_factory=dict)


@dataclass
class Manifest:
    """The whole manifest; saved atomically after every change."""

    source: dict[str, Any]
    base: dict[str, Any]
    llama_cpp: dict[str, str]
    parameters: dict[str, Any]
    imatrix: dict[str, Any] | None = None
    variants: dict[str, VariantRecord] = field(default_factory=dict)
    created: str = ""
    updated: str = ""

    @property
    def source_id(self) -> str:
        """The hash that identifies the source (a GGUF's sha256, or a checkpoint's combined file hashes)."""
        return str(self.source.get("sha256", ""))

    def to_json(self) -> dict[str, Any]:
        """The JSON document."""
        data = asdict(self)
        return {"format": FORMAT, "version": VERSION, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """Parse a manifest document (already checked for format); a section of the wrong shape is a TypeError."""
        sections = {key: data.get(key, {}) for key in ("source", "base", "llama_cpp", "parameters", "variants")}
        sections["source"], sections["base"] = data["source"], data["base"]
        imatrix = data.get("imatrix")
        if not all(isinstance(v, dict) for v in sections.values()) or not isinstance(imatrix, dict | None):
            raise TypeError("a manifest section is not an object")
        variants = {}
        for name, raw in sections["variants"].items():
            variants[str(name)] = VariantRecord(**{**raw, "file": FileRecord(**raw["file"])})
        return cls(
            source=sections["source"], base=sections["base"], llama_cpp=sections["llama_cpp"],
            parameters=sections["parameters"], imatrix=imatrix, variants=variants,
            created=str(data.get("created", "")), updated=str(data.get("updated", "")),
        )


def now() -> str:
    """UTC time stamp for records."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to a temporary file beside path, flush it to disk, then rename it over path.
    An OSError (a full disk) becomes a one-line error; the temporary file never stays behind."""
    tmp = partial_path(path)
    try:
        with os_errors("write", path), tmp.open("w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        with os_errors("write", path):
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_manifest(out_dir: Path, manifest: Manifest) -> None:
    """Stamp and write the manifest."""
    manifest.updated = now()
    manifest.created = manifest.created or manifest.updated
    write_json_atomic(out_dir / MANIFEST_NAME, manifest.to_json())


@contextmanager
def publishing(temp: Path, final: Path, out_dir: Path, manifest: Manifest) -> Iterator[None]:
    """Record `temp` in the manifest inside the block; then save the manifest and rename temp to final.

    The manifest is saved before the rename, so a file at `final` is always accounted for; on any
    failure (Ctrl-C included) the temporary file is removed and nothing is renamed.
    """
    try:
        yield
        save_manifest(out_dir, manifest)
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def load_manifest(out_dir: Path) -> Manifest | None:
    """The manifest in OUT_DIR, None when there is none; a foreign or damaged one is an error."""
    path = out_dir / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        with os_errors("read"):
            data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise OutputDirError(
            f"{path} is not a readable localr1 manifest; choose another output directory"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise OutputDirError(
            f"{path} was not written by localr1 quantize; choose another output directory"
        )
    if data.get("version") != VERSION:
        raise OutputDirError(f"{path} has manifest version {data.get('version')}; this localr1 reads {VERSION}")
    try:
        return Manifest.from_json(data)
    except (KeyError, TypeError, AttributeError, ValueError):
        raise OutputDirError(f"{path} is a damaged localr1 manifest; choose another output directory") from None


def inspect_output_dir(out_dir: Path) -> Manifest | None:
    """Check OUT_DIR could be ours: new, empty, or holding a localr1 ladder (whose manifest is returned)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirError(f"the output path {out_dir} is a file, not a directory; choose a directory")
    if not out_dir.exists():
        return None
    manifest = load_manifest(out_dir)
    if manifest is None:
        with os_errors("list"):
            entries = sorted(p.name for p in out_dir.iterdir() if not is_lock_artifact(p.name))
        if entries:
            shown = ", ".join(entries[:3]) + (", …" if len(entries) > 3 else "")
            raise OutputDirError(
                f"{out_dir} already holds files localr1 did not write ({shown}); "
                "choose an empty or new output directory"
            )
    return manifest


def claim_output_dir(out_dir: Path, source_id: str) -> Manifest | None:
    """Check OUT_DIR is ours to write: new, empty, or holding our ladder of this same source.
    Returns the existing manifest (None for a fresh directory). Removes partial files and lock files of earlier
    runs: call it holding OUT_DIR's lock (quantize.outlock.locked_dir)."""
    manifest = inspect_output_dir(out_dir)
    if manifest is None:
        return None
    if manifest.source_id != source_id:
        raise OutputDirError(
            f"{out_dir} holds the ladder of another source ({manifest.source.get('path', '?')}); "
            "choose another output directory"
        )
    held = {DIR_LOCK_NAME, DIR_LOCK_NAME + INFO_SUFFIX}
    for leftover in out_dir.iterdir():
        stale_lock = is_lock_artifact(leftover.name) and leftover.name not in held
        if (is_partial(leftover) or stale_lock) and leftover.is_file():
            leftover.unlink()  # left by an interrupted run of ours (the caller holds OUT_DIR's lock)
    return manifest


def record_file(out_dir: Path, path: Path, sha256: str) -> FileRecord:
    """A FileRecord for a file, named relative to OUT_DIR when it lies inside."""
    stat = path.stat()
    try:
        name = str(path.resolve().relative_to(out_dir.resolve()))
    except ValueError:
        name = str(path.resolve())
    return FileRecord(name, stat.st_size, sha256, stat.st_mtime_ns)


def resolve_record(out_dir: Path, record: FileRecord) -> Path:
    """The path a FileRecord names."""
    path = Path(record.path)
    return path if path.is_absolute() else out_dir / path


def file_matches(out_dir: Path, record: FileRecord, rehash: bool = False) -> bool:
    """Whether the recorded file is there, unchanged: size and mtime (or, when asked or changed, its sha256)."""
    path = resolve_record(out_dir, record)
    if not path.is_file():
        return False
    stat = path.stat()
    if stat.st_size != record.size:
        return False
    if not rehash and stat.st_mtime_ns == record.mtime_ns:
        return True
    return sha256_file(path) == record.sha256
