"""What the ladder starts from: an unquantized GGUF, or a checkpoint folder that is converted to one first."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from localr1.errors import ModelFileError
from localr1.gguf_header import read_header
from localr1.ggufinfo import GGUFInfo, read_info
from quantize.errors import RequantizeError, SourceError
from quantize.ladder.manifest import sha256_file
from quantize.progress import NullReporter, Reporter

UNQUANTIZED_TENSOR_TYPES = frozenset({0, 1, 30})  # ggml F32, F16, BF16
CHECKPOINT_MARKERS = ("config.json",)


@dataclass(frozen=True)
class SourceFile:
    """One file of the source with its hash; size and mtime let a rerun skip re-hashing it."""

    name: str
    size: int
    sha256: str
    mtime_ns: int


@dataclass(frozen=True)
class Source:
    """A source identified by the hashes of its files."""

    kind: Literal["gguf", "checkpoint"]
    path: Path
    files: list[SourceFile]

    @property
    def sha256(self) -> str:
        """The source's identity: its file's sha256, or a hash over a checkpoint's file hashes."""
        if self.kind == "gguf":
            return self.files[0].sha256
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f"{f.name}\0{f.sha256}\n".encode())
        return digest.hexdigest()

    def to_json(self) -> dict[str, Any]:
        """The manifest's `source` section."""
        return {"kind": self.kind, "path": str(self.path), "sha256": self.sha256,
                "files": [asdict(f) for f in self.files]}


def _source_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                                                                         p.relative_to(path).parts))


def describe_source(path: Path, known: dict[str, Any] | None = None, reporter: Reporter | None = None) -> Source:
    """Check the source exists and is a GGUF file or a checkpoint folder, and hash its files.
    `known` is an earlier manifest's source section: files with the same size and mtime keep their hash."""
    reporter = reporter or NullReporter()
    if not path.exists():
        raise SourceError(f"source not found: {path} (give a checkpoint folder or an F16/BF16/F32 .gguf file)")
    if path.is_dir():
        if not any((path / marker).is_file() for marker in CHECKPOINT_MARKERS):
            raise SourceError(f"{path} is not a checkpoint folder (no config.json); give a checkpoint or a .gguf file")
        kind: Literal["gguf", "checkpoint"] = "checkpoint"
    else:
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise SourceError(f"{path} is neither a GGUF file nor a checkpoint folder")
        kind = "gguf"
    previous = {}
    if known and known.get("path") == str(path.resolve()):
        previous = {f["name"]: f for f in known.get("files", [])}
    files = _source_files(path)
    total = sum(p.stat().st_size for p in files)
    reporter.start(f"hashing {path.name}", total)
    done = 0
    records = []
    for file in files:
        name = file.name if kind == "gguf" else str(file.relative_to(path))
        stat = file.stat()
        old = previous.get(name)
        if old and old.get("size") == stat.st_size and old.get("mtime_ns") == stat.st_mtime_ns:
            digest = str(old["sha256"])
            done += stat.st_size
        else:
            def count(n: int) -> None:
                nonlocal done
                done += n
                reporter.advance(done)
            digest = sha256_file(file, count)
        records.append(SourceFile(name, stat.st_size, digest, stat.st_mtime_ns))
        reporter.advance(done)
    reporter.finish()
    return Source(kind, path.resolve(), records)


def check_base(path: Path, allow_requantize: bool) -> GGUFInfo:
    """Validate an input GGUF and refuse a quantized one unless requantizing is allowed."""
    try:
        info = read_info(path)
    except ModelFileError as exc:
        raise SourceError(f"corrupt source: {exc.message}") from None
    quantized = sorted({t.type_id for t in read_header(path).tensors} - UNQUANTIZED_TENSOR_TYPES)
    if quantized and not allow_requantize:
        raise RequantizeError(
            f"{path.name} is already quantized ({info.file_type}): quantizing it again loses quality; "
            "start from a checkpoint or an F16/BF16/F32 GGUF, or pass --allow-requantize"
        )
    return info
