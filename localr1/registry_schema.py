"""Checks one models.toml entry field by field: a bad entry is an error naming the file, the entry and the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localr1.errors import ConfigError

REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# llama.cpp's file types (llama-quantize's names)
QUANT_TYPES = frozenset({
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M",
    "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S",
    "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4_MOE",
})
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

# field -> (accepted types, what to write there); required unless listed in OPTIONAL
FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "display_name": ((str,), "a name"),
    "hf_repo": ((str,), "the checkpoint's Hub repo, owner/name"),
    "architecture": ((str,), "llama or qwen2"),
    "reasoning": ((bool,), "true or false"),
    "layers": ((int,), "a whole number above 0"),
    "hidden_size": ((int,), "a whole number above 0"),
    "intermediate_size": ((int,), "a whole number above 0"),
    "attention_heads": ((int,), "a whole number above 0"),
    "kv_heads": ((int,), "a whole number above 0"),
    "head_dim": ((int,), "a whole number above 0"),
    "vocab_size": ((int,), "a whole number above 0"),
    "context_length": ((int,), "a whole number above 0"),
    "license": ((str,), "a license name such as mit"),
    "source": ((str,), "package:PACKAGE/FILE"),
    "quant": ((str,), "a quant type such as Q4_K_M"),
    "rope_theta": ((int, float), "a number"),
    "rope_scaling": ((dict,), "a table"),
    "base_model_license": ((str,), "a license name"),
    "sizes_gb": ((dict,), "a table of quant type = GB"),
    "sampling": ((dict,), "a table of sampling values"),
    "gguf": ((list,), "a list of [[models.KEY.gguf]] tables"),
}
OPTIONAL = frozenset({"source", "quant", "rope_theta", "rope_scaling", "base_model_license", "sizes_gb", "sampling",
                      "gguf"})
POSITIVE = frozenset({"layers", "hidden_size", "intermediate_size", "attention_heads", "kv_heads", "head_dim",
                      "vocab_size", "context_length"})


@dataclass(frozen=True)
class GGUFFile:
    """One quant type in a GGUF repo: its file (or the parts of a split file) and its size."""

    quant: str
    files: tuple[str, ...]
    size_gb: float


@dataclass(frozen=True)
class GGUFRepo:
    """A Hub repo publishing GGUFs of a model, with the file for each quant type."""

    repo: str
    files: dict[str, GGUFFile]
    revision: str = "main"


class EntryError(ConfigError):
    """A models.toml entry with a missing or malformed field."""


def _fail(path: Path, key: str, field: str, message: str) -> EntryError:
    return EntryError(f"bad model entry '{key}' in {path}: field '{field}' {message}")


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    # TOML booleans are ints to Python: never accept one where a number is wanted, or the reverse.
    return isinstance(value, kinds) and (isinstance(value, bool) is (bool in kinds))


def check_entry(path: Path, key: str, raw: Any) -> None:
    """Raise EntryError for the first problem in one entry."""
    if not KEY_RE.match(key):
        raise _fail(path, key, "name", "must be lower case letters, digits, '.', '_' or '-'")
    if not isinstance(raw, dict):
        raise EntryError(f"bad model entry '{key}' in {path}: expected a [models.{key}] table")
    for field, (kinds, what) in FIELDS.items():
        if field not in raw:
            if field not in OPTIONAL:
                raise _fail(path, key, field, f"is missing (should be {what})")
            continue
        value = raw[field]
        if not _is(value, kinds) or (field in POSITIVE and value <= 0):
            raise _fail(path, key, field, f"= {value!r} should be {what}")
    if not REPO_RE.match(raw["hf_repo"]):
        raise _fail(path, key, "hf_repo", f"= {raw['hf_repo']!r} should be owner/name")
    for quant, gb in (raw.get("sizes_gb") or {}).items():
        if quant not in QUANT_TYPES or not _is(gb, (int, float)) or gb <= 0:
            raise _fail(path, key, "sizes_gb", f"has {quant} = {gb!r}: want a quant type = a size in GB above 0")


def parse_gguf_repos(path: Path, key: str, raw: list[Any]) -> tuple[GGUFRepo, ...]:
    """The [[models.KEY.gguf]] tables, checked."""
    repos = []
    for i, table in enumerate(raw):
        where = f"gguf[{i}]"
        if not isinstance(table, dict):
            raise _fail(path, key, where, "should be a table with repo and files")
        repo = table.get("repo")
        if not isinstance(repo, str) or not REPO_RE.match(repo):
            raise _fail(path, key, f"{where}.repo", f"= {repo!r} should be owner/name")
        revision = table.get("revision", "main")
        if not isinstance(revision, str) or not revision:
            raise _fail(path, key, f"{where}.revision", f"= {revision!r} should be a branch, tag or commit")
        files = table.get("files")
        if not isinstance(files, dict) or not files:
            raise _fail(path, key, f"{where}.files", "should be a table of quant type = { file, size_gb }")
        parsed: dict[str, GGUFFile] = {}
        for quant, spec in files.items():
            field = f"{where}.files.{quant}"
            if quant not in QUANT_TYPES:
                raise _fail(path, key, field, "is not a llama.cpp quant type (e.g. Q4_K_M)")
            if not isinstance(spec, dict):
                raise _fail(path, key, field, "should be { file = \"NAME.gguf\", size_gb = N }")
            names = spec.get("file")
            names = [names] if isinstance(names, str) else names
            if not isinstance(names, list) or not names or not all(
                    isinstance(n, str) and n.endswith(".gguf") and ".." not in n.split("/") and not n.startswith("/")
                    for n in names):
                raise _fail(path, key, f"{field}.file", f"= {spec.get('file')!r} should be a .gguf path in the repo "
                                                         "(or a list of the parts of a split file)")
            size = spec.get("size_gb")
            if not isinstance(size, int | float) or isinstance(size, bool) or size <= 0:
                raise _fail(path, key, f"{field}.size_gb", f"= {size!r} should be a size in GB above 0")
            parsed[quant] = GGUFFile(quant, tuple(names), float(size))
        repos.append(GGUFRepo(repo, parsed, revision))
    return tuple(repos)
