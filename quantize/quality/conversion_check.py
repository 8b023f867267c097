"""Check a converted GGUF against its checkpoint: tokenizer, logits and chat template parity.

llama_cpp is imported lazily, inside the checks that run llama.cpp.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from quantize.convert.checkpoint import open_checkpoint
from quantize.errors import VerificationError
from quantize.quality.hf_chat import render_chat, sample_conversation, template_inputs
from quantize.quality.reference import ReferenceModel

GGML_TYPE_F32 = 0
# Allowed max |logit difference| / max |logit| and top-1 agreement, by the GGUF's file type,
# with a float32 KV cache; an f16 KV cache adds its own rounding (about 1e-3).
TOLERANCES: dict[str, tuple[float, float]] = {
    "ALL_F32": (1e-4, 1.0),
    "MOSTLY_F16": (5e-3, 0.95),
    "MOSTLY_BF16": (1e-2, 0.95),
    "MOSTLY_Q8_0": (5e-2, 0.9),
}
F16_KV_FLOOR = 5e-3

CORPUS = [
    "Hello, world! It's a test: we'll see what THEY'RE doing, I'm sure you've seen it.",
    "def add(a: int, b: int) -> int:\n    return a + b\n\n\nprint(add(2, 3))\n",
    "    indented\tline\t\twith tabs\n\n\n   and   runs   of    spaces   ",
    "Numbers: 0 1 12 123 1234 12345 123456 3.14159 2025-01-20 1,000,000 ٣٤٥",
    "中文测试：人工智能正在改变世界。日本語のテキスト。한국어 문장입니다.",
    "Emoji 🤖🚀👍🏽✨🎉 and 👨‍👩‍👧‍👦 family, flags 🇫🇷🇯🇵",
    "Mixed\r\nline\rendings\n\r\n and trailing whitespace \n",
    "{\"key\": [1, 2, 3], 'quote': \"it's\", path: C:\\Users\\me}",
    "Ünïcödé àçcénts, Ελληνικά, русский текст, عربى, עברית",
    "<think>\nLet me reason step by step.\n</think>\n\nThe answer is 42.",
]


@dataclass(frozen=True)
class CheckResult:
    """One parity check: passed or not, with a one-line detail."""

    name: str
    passed: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifyReport:
    """All checks of one verification."""

    checks: list[CheckResult]

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)

    def lines(self) -> list[str]:
        """One line per check."""
        return [f"{'ok  ' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]

    def raise_if_failed(self) -> None:
        """Raise VerificationError naming the failed checks."""
        failed = [c for c in self.checks if not c.passed]
        if failed:
            raise VerificationError("verification failed: " + "; ".join(f"{c.name}: {c.detail}" for c in failed))


def _llama(gguf_path: Path, *, n_ctx: int, kv_f32: bool = True) -> Any:
    import llama_cpp

    kv_type = GGML_TYPE_F32 if kv_f32 else None
    with _quiet_llama():
        return llama_cpp.Llama(
            model_path=str(gguf_path), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=os.cpu_count() or 1,
            type_k=kv_type, type_v=kv_type, logits_all=True, verbose=False,
        )


@contextmanager
def _quiet_llama() -> Iterator[None]:
    """Keep llama.cpp's load log off the terminal (captured, as the ladder does)."""
    from quantize.llama_log import capture_llama_log

    with capture_llama_log():
        yield


class _LlamaVocab:
    """llama.cpp's tokenizer alone: the GGUF loaded vocab-only, no weights and no context."""

    def __init__(self, gguf_path: Path) -> None:
        import llama_cpp

        self._lib = llama_cpp
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        with _quiet_llama():
            self._model = llama_cpp.llama_model_load_from_file(str(gguf_path).encode(), params)
        if not self._model:
            raise VerificationError(f"llama.cpp could not load the vocabulary of {gguf_path}")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)

    def tokenize(self, text: str) -> list[int]:
        """Ids without BOS, special tokens parsed (as a rendered chat prompt is tokenized)."""
        data = text.encode("utf-8")
        size = len(data) + 8
        while True:
            buffer = (self._lib.llama_token * size)()
            n = self._lib.llama_tokenize(self._vocab, data, len(data), buffer, size, False, True)
            if n >= 0:
                return list(buffer[:n])
            size = -n

    def close(self) -> None:
        """Free the model."""
        self._lib.llama_model_free(self._model)


def _hf_tokenizer(checkpoint_dir: Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(checkpoint_dir / "tokenizer.json"))


def tokenizer_corpus(checkpoint_dir: Path) -> list[str]:
    """Texts for tokenizer parity: mixed scripts, code, whitespace, digits, every added token, a chat."""
    tokenizer = _hf_tokenizer(checkpoint_dir)
    added = [t.content for t in tokenizer.get_added_tokens_decoder().values()]
    rendered = render_chat(*template_inputs(checkpoint_dir), sample_conversation())
    return [*CORPUS, " ".join(added), "".join(added), *(f"x{t}y {t} " for t in added), rendered]


def check_tokenizer(checkpoint_dir: Path, gguf_path: Path) -> CheckResult:
    """The HF tokenizer and llama.cpp's give identical ids on the corpus."""
    hf = _hf_tokenizer(checkpoint_dir)
    vocab = _LlamaVocab(gguf_path)
    texts = tokenizer_corpus(checkpoint_dir)
    mismatches = []
    for text in texts:
        ours = list(hf.encode(text, add_special_tokens=False).ids)
        theirs = vocab.tokenize(text)
        if ours != theirs:
            mismatches.append({"text": text, "hf": ours, "llama": theirs})
    vocab.close()
    detail = f"{len(texts) - len(mismatches)}/{len(texts)} texts identical"
    if mismatches:
        detail += f"; first mismatch on {mismatches[0]['text'][:40]!r}"
    return CheckResult("tokenizer", not mismatches, detail, {"mismatches": mismatches})


def _file_type(reader: gguf.GGUFReader) -> str:
    field_ = reader.fields.get("general.file_type")
    value = int(field_.contents()) if field_ is not None else 0
    return gguf.LlamaFileType(value).name


def check_logits(checkpoint_dir: Path, gguf_path: Path, *, kv_f32: bool = True,
                 tolerance: float | None = None) -> CheckResult:
    """The numpy reference and llama.cpp agree on the logits of a short chat prompt."""
    hf = _hf_tokenizer(checkpoint_dir)
    prompt = render_chat(*template_inputs(checkpoint_dir), sample_conversation())
    tokens = list(hf.encode(prompt, add_special_tokens=False).ids)
    with open_checkpoint(checkpoint_dir) as checkpoint:
        reference = ReferenceModel(checkpoint).logits(tokens)
    llm = _llama(gguf_path, n_ctx=max(64, len(tokens) + 16), kv_f32=kv_f32)
    llm.eval(tokens)
    actual = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    llm.close()
    file_type = _file_type(gguf.GGUFReader(gguf_path, "r"))
    allowed, min_top1 = TOLERANCES.get(file_type, (5e-2, 0.8))
    if not kv_f32:
        allowed = max(allowed, F16_KV_FLOOR)
    if tolerance is not None:
        allowed = tolerance
    if actual.shape != reference.shape:
        return CheckResult("logits", False, f"llama.cpp gave {actual.shape} logits, reference {reference.shape}")
    scale = float(np.abs(reference).max())
    max_rel = float(np.abs(actual - reference).max()) / scale
    top1 = float(np.mean(actual.argmax(axis=-1) == reference.argmax(axis=-1)))
    passed = max_rel <= allowed and top1 >= min_top1
    detail = (f"max relative diff {max_rel:.2e} (allowed {allowed:.0e}), top-1 agreement {top1:.0%} "
              f"over {len(tokens)} positions ({file_type.removeprefix('MOSTLY_')}, "
              f"{'f32' if kv_f32 else 'f16'} KV cache)")
    return CheckResult("logits", passed, detail, {"max_rel_diff": max_rel, "top1": top1, "tokens": len(tokens)})


def _gguf_template_inputs(gguf_path: Path) -> tuple[str | None, str, str]:
    reader = gguf.GGUFReader(gguf_path, "r")

    def value(key: str) -> Any:
        field_ = reader.fields.get(key)
        return field_.contents() if field_ is not None else None

    tokens = reader.fields["tokenizer.ggml.tokens"]

    def token(key: str) -> str:
        token_id = value(key)
        return str(tokens.contents(int(token_id))) if token_id is not None else ""

    template = value("tokenizer.chat_template")
    return (str(template) if template is not None else None), token("tokenizer.ggml.bos_token_id"), token(
        "tokenizer.ggml.eos_token_id")


def check_template(checkpoint_dir: Path, gguf_path: Path) -> CheckResult:
    """A multi-turn conversation renders to the same text with the checkpoint's and the GGUF's template."""
    ours = template_inputs(checkpoint_dir)
    theirs = _gguf_template_inputs(gguf_path)
    if ours[0] is None:
        return CheckResult("template", theirs[0] is None, "the checkpoint has no chat template")
    if theirs[0] is None:
        return CheckResult("template", False, "the GGUF has no chat template")
    conversation = sample_conversation()
    a = render_chat(*ours, conversation)
    b = render_chat(*theirs, conversation)
    return CheckResult("template", a == b, f"{len(a)} characters, {'identical' if a == b else 'DIFFERENT'}",
                       {"checkpoint": a, "gguf": b})


def verify(checkpoint_dir: str | Path, gguf_path: str | Path, *, kv_f32: bool = True,
           tolerance: float | None = None) -> VerifyReport:
    """Run the three parity checks of a converted file against its checkpoint."""
    checkpoint_dir, gguf_path = Path(checkpoint_dir), Path(gguf_path)
    if not gguf_path.is_file():
        raise VerificationError(f"GGUF file not found: {gguf_path}")
    return VerifyReport([
        check_tokenizer(checkpoint_dir, gguf_path),
        check_logits(checkpoint_dir, gguf_path, kv_f32=kv_f32, tolerance=tolerance),
        check_template(checkpoint_dir, gguf_path),
    ])
