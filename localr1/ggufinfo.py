"""Read-only facts from a GGUF header, and the checks run before llama.cpp opens a file."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from localr1.errors import ModelFileError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
SUPPORTED_ARCHITECTURES = frozenset(gguf.MODEL_ARCH_NAMES.values())


@dataclass(frozen=True)
class GGUFInfo:
    """What localr1 needs to know about a model file before and after loading it."""

    path: Path
    version: int
    architecture: str
    name: str
    file_type: str
    parameters: int
    tensor_bytes: int
    file_size: int
    context_length: int
    block_count: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    chat_template: str | None
    bos_token: str | None
    eos_token: str | None
    add_bos_token: bool | None
    metadata: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def is_r1(self) -> bool:
        """True for DeepSeek R1 distills, recognised by their chat template's special tokens."""
        return self.chat_template is not None and "<｜Assistant｜>" in self.chat_template

    @property
    def template_family(self) -> str:
        """A short name for the kind of chat template embedded in the file."""
        t = self.chat_template or ""
        if not t:
            return "none"
        if "<｜Assistant｜>" in t:
            return "deepseek-r1" if "<think>" in t else "deepseek"
        if "<|im_start|>" in t:
            return "chatml"
        if "<|start_header_id|>" in t:
            return "llama3"
        return "custom"


def _check_header(path: Path) -> int:
    """Check existence, magic and version; return the version."""
    if not path.exists():
        raise ModelFileError(f"model file not found: {path} (check the path or run 'localr1 models')")
    if not path.is_file():
        raise ModelFileError(f"not a file: {path} (give the path of a .gguf file)")
    with path.open("rb") as fh:
        head = fh.read(8)
    if len(head) < 8 or head[:4] != GGUF_MAGIC:
        raise ModelFileError(f"not a GGUF file (bad magic): {path} (convert it with 'localr1 convert')")
    version: int = struct.unpack("<I", head[4:8])[0]
    if version not in SUPPORTED_VERSIONS:
        raise ModelFileError(
            f"unsupported GGUF version {version} in {path} (supported: "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}; re-convert it with a current converter)"
        )
    return version


def _field_value(reader: gguf.GGUFReader, key: str) -> Any:
    fld = reader.fields.get(key)
    if fld is None:
        return None
    value = fld.contents()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _token(reader: gguf.GGUFReader, id_key: str) -> str | None:
    token_id = _field_value(reader, id_key)
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    if token_id is None or tokens is None or token_id >= len(tokens.data):
        return None
    value = tokens.contents(token_id)
    return value if isinstance(value, str) else None


def _file_type_name(file_type: Any) -> str:
    if file_type is None:
        return "unknown"
    try:
        return gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_")
    except ValueError:
        return f"type {file_type}"


def read_info(path: str | Path) -> GGUFInfo:
    """Validate a GGUF file and return its facts; any problem raises ModelFileError."""
    path = Path(path)
    version = _check_header(path)
    file_size = path.stat().st_size
    try:
        reader = gguf.GGUFReader(path, "r")
    except Exception as exc:  # the reader raises many types on a damaged header
        raise ModelFileError(
            f"corrupt or truncated GGUF header in {path} ({exc.__class__.__name__}: {exc}); "
            "download or convert the file again"
        ) from None
    tensor_bytes = 0
    parameters = 0
    for tensor in reader.tensors:
        end = int(tensor.data_offset) + int(tensor.n_bytes)
        if end > file_size:
            raise ModelFileError(
                f"truncated GGUF file: tensor '{tensor.name}' ends at byte {end} but {path} has "
                f"only {file_size} bytes; download or convert it again"
            )
        tensor_bytes += int(tensor.n_bytes)
        parameters += int(tensor.n_elements)
    arch = _field_value(reader, "general.architecture")
    if not isinstance(arch, str):
        raise ModelFileError(f"GGUF file without general.architecture: {path} (re-convert it)")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelFileError(
            f"unknown model architecture '{arch}' in {path}; llama.cpp supports e.g. "
            "llama, qwen2, qwen3, gemma3, phi3 (convert a supported model)"
        )
    file_type = _field_value(reader, "general.file_type")
    file_type_name = _file_type_name(file_type)
    metadata = {
        key: _field_value(reader, key)
        for key in reader.fields
        if not key.startswith("tokenizer.ggml.") and not key.startswith("GGUF.")
    }

    def arch_int(suffix: str) -> int:
        value = _field_value(reader, f"{arch}.{suffix}")
        return int(value) if isinstance(value, int | float) else 0

    add_bos = _field_value(reader, "tokenizer.ggml.add_bos_token")
    return GGUFInfo(
        path=path,
        version=version,
        architecture=arch,
        name=str(_field_value(reader, "general.name") or path.stem),
        file_type=file_type_name,
        parameters=parameters,
        tensor_bytes=tensor_bytes,
        file_size=file_size,
        context_length=arch_int("context_length"),
        block_count=arch_int("block_count"),
        embedding_length=arch_int("embedding_length"),
        head_count=arch_int("attention.head_count"),
        head_count_kv=arch_int("attention.head_count_kv") or arch_int("attention.head_count"),
        chat_template=_field_value(reader, "tokenizer.chat_template"),
        bos_token=_token(reader, "tokenizer.ggml.bos_token_id"),
        eos_token=_token(reader, "tokenizer.ggml.eos_token_id"),
        add_bos_token=bool(add_bos) if add_bos is not None else None,
        metadata=metadata,
    )
