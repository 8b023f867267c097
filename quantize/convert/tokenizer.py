"""tokenizer.json + tokenizer_config.json -> the GGUF vocabulary (byte-level BPE) and chat template."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from quantize.convert.config import read_json_object
from quantize.errors import CheckpointError, UnsupportedModelError

# The Split regexes of the real releases' tokenizer.json, and llama.cpp's names for them
# (llama-vocab.cpp: "qwen2" and "llama-bpe"; its own copies spell the (?i:...) group out).
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
EXPANDED_CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
PRE_TOKENIZERS: dict[str, str] = {}
for _pattern, _name in ((QWEN2_PATTERN, "qwen2"), (LLAMA3_PATTERN, "llama-bpe")):
    PRE_TOKENIZERS[_pattern] = _name
    PRE_TOKENIZERS[_pattern.replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", EXPANDED_CONTRACTIONS)] = _name

PAD_TOKEN_FALLBACK = "<｜▁pad▁｜>"


@dataclass(frozen=True)
class Vocab:
    """Everything the GGUF tokenizer section holds."""

    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    pre: str
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    add_bos: bool
    add_eos: bool
    chat_template: str | None
    n_real_tokens: int

    def write(self, writer: Any) -> None:
        """Add the tokenizer keys to a GGUFWriter."""
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        writer.add_token_types(self.token_types)
        writer.add_token_merges(self.merges)
        for token_id, add in ((self.bos_id, writer.add_bos_token_id), (self.eos_id, writer.add_eos_token_id),
                              (self.pad_id, writer.add_pad_token_id)):
            if token_id is not None:
                add(token_id)
        writer.add_add_bos_token(self.add_bos)
        writer.add_add_eos_token(self.add_eos)
        if self.chat_template:
            writer.add_chat_template(self.chat_template)


def detect_pre_tokenizer(tokenizer: dict[str, Any]) -> str:
    """llama.cpp's name for the tokenizer's own pre-tokenizer (its Split regex), or fail naming it."""
    pre = tokenizer.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    patterns = [
        step.get("pattern", {}).get("Regex")
        for step in steps
        if isinstance(step, dict) and step.get("type") == "Split"
    ]
    byte_level = [s for s in steps if isinstance(s, dict) and s.get("type") == "ByteLevel"]
    if not byte_level:
        raise UnsupportedModelError("tokenizer.json is not a byte-level BPE (no ByteLevel pre-tokenizer)")
    if len(patterns) == 1 and patterns[0] in PRE_TOKENIZERS:
        return PRE_TOKENIZERS[patterns[0]]
    if not patterns and byte_level[0].get("use_regex", True):
        return "gpt-2"
    shown = patterns[0] if patterns else "none"
    raise UnsupportedModelError(
        f"tokenizer.json uses an unknown pre-tokenizer split ({str(shown)[:60]}...); "
        "supported: Qwen2's (qwen2) and Llama 3's (llama-bpe)"
    )


def token_text(value: Any) -> str | None:
    """A token given as a string or as an AddedToken object."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _merges(model: dict[str, Any]) -> list[str]:
    merges = model.get("merges", [])
    out: list[str] = []
    for merge in merges:
        if isinstance(merge, str):
            out.append(merge)
        elif isinstance(merge, list) and len(merge) == 2:
            out.append(f"{merge[0]} {merge[1]}")
        else:
            raise CheckpointError(f"tokenizer.json has a malformed merge: {merge!r}")
    return out


def chat_template_of(directory: Path, tokenizer_config: dict[str, Any]) -> str | None:
    """The chat template from tokenizer_config.json (default of named ones) or chat_template.jinja."""
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # named templates: keep the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    if template is None and (directory / "chat_template.jinja").exists():
        template = (directory / "chat_template.jinja").read_text(encoding="utf-8")
    return template if isinstance(template, str) else None


def _load_tokenizer_json(directory: Path) -> dict[str, Any]:
    path = directory / "tokenizer.json"
    if not path.exists():
        raise CheckpointError(f"tokenizer.json not found in {directory}; the converter needs the fast tokenizer file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"tokenizer.json is not valid JSON ({exc}); download it again") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise UnsupportedModelError("tokenizer.json is not a BPE tokenizer; only byte-level BPE is supported")
    out: dict[str, Any] = data
    return out


def _tokens_and_types(data: dict[str, Any], vocab_size: int) -> tuple[list[str], list[int], int]:
    """Token texts and types by id, padded with unused '[PAD<id>]' tokens up to vocab_size."""
    vocab: dict[str, int] = data["model"]["vocab"]
    added = data.get("added_tokens", [])
    n_real = max([*vocab.values(), *(int(t["id"]) for t in added)]) + 1
    if n_real > vocab_size:
        raise CheckpointError(
            f"the tokenizer has {n_real} tokens but config.json's vocab_size is {vocab_size}; "
            "the embedding cannot hold them"
        )
    slots: list[str | None] = [None] * vocab_size
    types = [int(gguf.TokenType.NORMAL)] * vocab_size
    for word, token_id in vocab.items():
        slots[token_id] = word
    for token in added:  # special -> CONTROL (parsed only on request), others -> USER_DEFINED (always)
        token_id = int(token["id"])
        slots[token_id] = str(token["content"])
        types[token_id] = int(gguf.TokenType.CONTROL if token.get("special") else gguf.TokenType.USER_DEFINED)
    tokens = [slot if slot is not None else f"[PAD{i}]" for i, slot in enumerate(slots)]
    for i, slot in enumerate(slots):
        if slot is None:
            types[i] = int(gguf.TokenType.UNUSED)
    if len(set(tokens)) != len(tokens):
        raise CheckpointError("tokenizer.json maps two ids to the same token text")
    return tokens, types, n_real


def _special_id(tokens: list[str], tok_config: dict[str, Any], key: str, fallback: Any) -> int | None:
    """A special token's id from its text in tokenizer_config.json, else from a config id."""
    text = token_text(tok_config.get(key))
    if text is not None:
        try:
            return tokens.index(text)
        except ValueError:
            raise CheckpointError(f"tokenizer_config.json's {key} {text!r} is not in the vocabulary") from None
    if isinstance(fallback, list):
        fallback = fallback[0] if fallback else None
    return int(fallback) if isinstance(fallback, int) else None


def load_vocab(directory: Path, vocab_size: int, generation_config: dict[str, Any] | None = None) -> Vocab:
    """Read the tokenizer files and pad the vocabulary to the embedding's `vocab_size` rows."""
    data = _load_tokenizer_json(directory)
    config_path = directory / "tokenizer_config.json"
    tok_config = read_json_object(config_path) if config_path.exists() else {}
    tokens, token_types, n_real = _tokens_and_types(data, vocab_size)
    gen = generation_config or {}
    pad_id = _special_id(tokens, tok_config, "pad_token", None)
    if pad_id is None and PAD_TOKEN_FALLBACK in tokens:
        pad_id = tokens.index(PAD_TOKEN_FALLBACK)
    return Vocab(
        tokens=tokens,
        token_types=token_types,
        merges=_merges(data["model"]),
        pre=detect_pre_tokenizer(data),
        bos_id=_special_id(tokens, tok_config, "bos_token", gen.get("bos_token_id")),
        eos_id=_special_id(tokens, tok_config, "eos_token", gen.get("eos_token_id")),
        pad_id=pad_id,
        add_bos=bool(tok_config.get("add_bos_token", False)),
        add_eos=bool(tok_config.get("add_eos_token", False)),
        chat_template=chat_template_of(directory, tok_config),
        n_real_tokens=n_real,
    )
