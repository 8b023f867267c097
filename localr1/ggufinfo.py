"""Read-only facts from a GGUF header, and the checks run before llama.cpp opens a file."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from localr1.errors import ModelFileError
from localr1.gguf_header import GGUFHeader, HeaderError, read_header

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


def _token(header: GGUFHeader, id_key: str) -> str | None:
    token_id = header.metadata.get(id_key)
    tokens = header.string_arrays.get("tokenizer.ggml.tokens")
    if not isinstance(token_id, int) or tokens is None or not 0 <= token_id < len(tokens):
        return None
    return tokens[token_id].decode("utf-8", errors="replace")


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
        header = read_header(path)
    except HeaderError as exc:
        raise ModelFileError(
            f"corrupt or truncated GGUF header in {path} ({exc}); download or convert it again"
        ) from None
    for tensor in header.tensors:
        end = header.data_start + tensor.offset + tensor.n_bytes
        if end > file_size:
            raise ModelFileError(
                f"truncated GGUF file: tensor '{tensor.name}' ends at byte {end} but {path} has "
                f"only {file_size} bytes; download or convert it again"
            )
    meta = header.metadata
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        raise ModelFileError(f"GGUF file without general.architecture: {path} (re-convert it)")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelFileError(
            f"unknown model architecture '{arch}' in {path}; llama.cpp supports e.g. "
            "llama, qwen2, qwen3, gemma3, phi3 (convert a supported model)"
        )

    def arch_int(suffix: str) -> int:
        value = meta.get(f"{arch}.{suffix}")
        return int(value) if isinstance(value, int | float) else 0

    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    template = meta.get("tokenizer.chat_template")
    return GGUFInfo(
        path=path,
        version=version,
        architecture=arch,
        name=str(meta.get("general.name") or path.stem),
        file_type=_file_type_name(meta.get("general.file_type")),
        parameters=sum(t.n_elements for t in header.tensors),
        tensor_bytes=sum(t.n_bytes for t in header.tensors),
        file_size=file_size,
        context_length=arch_int("context_length"),
        block_count=arch_int("block_count"),
        embedding_length=arch_int("embedding_length"),
        head_count=arch_int("attention.head_count"),
        head_count_kv=arch_int("attention.head_count_kv") or arch_int("attention.head_count"),
        chat_template=template if isinstance(template, str) else None,
        bos_token=_token(header, "tokenizer.ggml.bos_token_id"),
        eos_token=_token(header, "tokenizer.ggml.eos_token_id"),
        add_bos_token=bool(add_bos) if add_bos is not None else None,
        metadata={k: v for k, v in meta.items() if v is not None},
    )
