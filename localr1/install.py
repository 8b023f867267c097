"""Where `localr1 quantize` installs a ladder: the models folder, under the model's registry key.

The key is recognised from the source's shapes (a checkpoint's config.json, or a GGUF's header) against
models.toml, the name breaking a tie; `--as KEY` names it; an unknown model gets a key made from its name,
which never takes over a folder that holds another source's ladder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localr1.errors import ConfigError, ModelFileError
from localr1.gguf_header import HeaderError, read_header
from localr1.registry import ModelEntry, load_registry, model_folder

MANIFEST_FILE = "manifest.json"  # what quantize.ladder.manifest writes beside the variants
MAX_KEY_LENGTH = 64
_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class SourceShape:
    """What identifies a model: its name and the shapes models.toml lists."""

    name: str
    architecture: str
    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    vocab: int


@dataclass(frozen=True)
class InstallTarget:
    """The key a ladder is installed under, its folder, and how the key was found."""

    key: str
    folder: Path
    how: str  # "given", "recognised" or "new"


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _checkpoint_shape(folder: Path) -> SourceShape:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read {folder / 'config.json'}: {exc}") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{folder / 'config.json'} does not hold a JSON object")
    heads = _int(config.get("num_attention_heads"))
    return SourceShape(
        name=folder.name, architecture=str(config.get("model_type") or ""),
        layers=_int(config.get("num_hidden_layers")), hidden=_int(config.get("hidden_size")),
        ffn=_int(config.get("intermediate_size")), heads=heads,
        kv_heads=_int(config.get("num_key_value_heads")) or heads, vocab=_int(config.get("vocab_size")),
    )


def _gguf_shape(path: Path) -> SourceShape:
    try:
        header = read_header(path)
    except (OSError, ValueError, HeaderError) as exc:
        raise ModelFileError(f"cannot read the GGUF header of {path}: {exc}") from None
    meta = header.metadata
    arch = str(meta.get("general.architecture") or "")
    heads = _int(meta.get(f"{arch}.attention.head_count"))
    embd = next((t for t in header.tensors if t.name == "token_embd.weight"), None)
    vocab = int(embd.shape[1]) if embd is not None and len(embd.shape) > 1 else _int(meta.get(f"{arch}.vocab_size"))
    name = meta.get("general.name")
    return SourceShape(
        name=name if isinstance(name, str) and name.strip() else path.stem, architecture=arch,
        layers=_int(meta.get(f"{arch}.block_count")), hidden=_int(meta.get(f"{arch}.embedding_length")),
        ffn=_int(meta.get(f"{arch}.feed_forward_length")), heads=heads,
        kv_heads=_int(meta.get(f"{arch}.attention.head_count_kv")) or heads, vocab=vocab,
    )


def source_shape(source: Path) -> SourceShape:
    """The shapes and name of a checkpoint folder or a GGUF file."""
    if not source.exists():
        raise ModelFileError(f"{source} does not exist: give a checkpoint folder or an unquantized .gguf file")
    return _checkpoint_shape(source) if source.is_dir() else _gguf_shape(source)


def _entry_shape(e: ModelEntry) -> tuple[str, int, int, int, int, int, int]:
    return (e.architecture, e.layers, e.hidden_size, e.intermediate_size, e.attention_heads, e.kv_heads, e.vocab_size)


def recognise(shape: SourceShape) -> str | None:
    """The registry key whose shapes match exactly (the name decides between equal shapes), or None."""
    wanted = (shape.architecture, shape.layers, shape.hidden, shape.ffn, shape.heads, shape.kv_heads, shape.vocab)
    matches = [e for e in load_registry().values()
               if not (e.source or "").startswith("package:") and _entry_shape(e) == wanted]
    if len(matches) > 1:
        name = shape.name.lower()
        named = [e for e in matches if e.display_name.lower() in name or e.key in name]
        matches = named or matches
    return matches[0].key if matches else None


def slugify(name: str) -> str:
    """A key made of a name: lower case letters, digits, '.', '-' and '_' (e.g. 'My Model (v2)' -> 'my-model-v2')."""
    slug = re.sub(r"\.{2,}", ".", re.sub(r"[^a-z0-9._]+", "-", name.lower())).strip("-._")
    return slug[:MAX_KEY_LENGTH].strip("-._") or "model"


def _ladder_source(folder: Path) -> str | None:
    """The source path recorded by the ladder in a folder ("" for a folder holding anything else)."""
    if not folder.exists():
        return None
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        path = manifest["source"]["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return "" if any(folder.iterdir()) else None
    return path if isinstance(path, str) else ""


def _free_for(folder: Path, source: Path) -> bool:
    """True when the folder is new or empty, or holds the ladder of this same source (a rerun resumes it)."""
    recorded = _ladder_source(folder)
    return recorded is None or recorded == str(source.resolve())


def check_key(key: str) -> str:
    """A key given with --as: the form a folder name and a --model argument both take."""
    if not _KEY.match(key) or len(key) > MAX_KEY_LENGTH:
        raise ConfigError(f"--as {key!r} is not a usable key: use lower case letters, digits, '.', '-' and '_' "
                          f"(at most {MAX_KEY_LENGTH}), e.g. --as {slugify(key)}")
    entry = load_registry().get(key)
    if entry is not None and (entry.source or "").startswith("package:"):
        raise ConfigError(f"--as {key}: that model ships in a package and cannot be installed over; "
                          "choose another key")
    return key


def install_target(source: Path, as_key: str | None = None) -> InstallTarget:
    """Where to build the ladder of `source` inside the models folder."""
    if as_key is not None:
        key, how = check_key(as_key), "given"
    else:
        shape = source_shape(source)
        known = recognise(shape)
        key, how = (known, "recognised") if known else (slugify(shape.name), "new")
    registry = load_registry()
    folder = model_folder(key)
    if _free_for(folder, source) and (how != "new" or key not in registry):  # a name is no claim to a family key
        return InstallTarget(key, folder, how)
    if how != "new":
        raise ConfigError(f"{folder} already holds another model's ladder ({_ladder_source(folder) or 'other files'}); "
                          f"install this one under another key with --as KEY, or write it elsewhere with -o DIR")
    for n in range(2, 1000):
        candidate = f"{key[: MAX_KEY_LENGTH - 5]}-{n}"
        if candidate not in registry and _free_for(model_folder(candidate), source):
            return InstallTarget(candidate, model_folder(candidate), how)
    raise ConfigError(f"no free key for {key} in {folder.parent}: pass one with --as KEY")
