"""Copies of real GGUF files with edited metadata, made with the gguf package's own copier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

from tests.fixtures.template import R1_TEMPLATE

__all__ = ["BOOL", "R1_TEMPLATE", "STRING", "rewrite_gguf"]

STRING = gguf.GGUFValueType.STRING
BOOL = gguf.GGUFValueType.BOOL


def rewrite_gguf(src: Path, dst: Path, arch: str | None = None, **changes: tuple[gguf.GGUFValueType, Any]) -> Path:
    """Copy src to dst with metadata changed (keys given with '.' written as '__')."""
    reader = gguf.GGUFReader(src, "r")
    architecture = arch or str(reader.fields["general.architecture"].contents())
    writer = gguf.GGUFWriter(dst, architecture)
    new = {key.replace("__", "."): MetadataDetails(kind, value) for key, (kind, value) in changes.items()}
    copy_with_new_metadata(reader, writer, new, [])
    return dst
