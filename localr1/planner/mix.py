"""llama.cpp's per-tensor type choice for a file type (`llama_tensor_get_type` in llama-quant.cpp), and the
tensors a dense llama/qwen2 GGUF holds: the exact bytes of a variant before it exists.

Only the file types the ladder uses are covered (plus the legacy ones); the rules below follow llama.cpp's
for models without experts. The layer counter follows the tensors in layer order, as in the real R1 files.
"""

from __future__ import annotations

from dataclasses import dataclass

import gguf

from localr1.planner.shape import ModelShape

T = gguf.GGMLQuantizationType

# general.file_type (llama.h's enum llama_ftype) -> the default tensor type of that mix
FILE_TYPES: dict[str, tuple[int, T]] = {
    "F32": (0, T.F32), "F16": (1, T.F16), "BF16": (32, T.BF16),
    "Q4_0": (2, T.Q4_0), "Q4_1": (3, T.Q4_1), "Q5_0": (8, T.Q5_0), "Q5_1": (9, T.Q5_1), "Q8_0": (7, T.Q8_0),
    "Q2_K": (10, T.Q2_K), "Q3_K_S": (11, T.Q3_K), "Q3_K_M": (12, T.Q3_K), "Q3_K_L": (13, T.Q3_K),
    "Q4_K_S": (14, T.Q4_K), "Q4_K_M": (15, T.Q4_K), "Q5_K_S": (16, T.Q5_K), "Q5_K_M": (17, T.Q5_K),
    "Q6_K": (18, T.Q6_K), "IQ4_NL": (25, T.IQ4_NL), "IQ4_XS": (30, T.IQ4_XS),
}
FILE_TYPE_NAMES: dict[int, str] = {ftype: name for name, (ftype, _) in FILE_TYPES.items()}
_FLOATS = frozenset({T.F32, T.F16, T.BF16})
# tensor_type_fallback: a row length the type's block does not divide falls back to a 32-block type
_FALLBACK = {T.Q2_K: T.Q4_0, T.Q3_K: T.Q4_0, T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1, T.Q6_K: T.Q8_0, T.IQ4_XS: T.IQ4_NL}


class UnknownFileTypeError(ValueError):
    """A file type the mix rule does not cover."""


@dataclass(frozen=True)
class Tensor:
    """One tensor of a GGUF: name, ggml dims (ne[0] is the row length) and type."""

    name: str
    ne: tuple[int, ...]
    type: T

    @property
    def n_elements(self) -> int:
        """Number of values."""
        count = 1
        for dim in self.ne:
            count *= dim
        return count

    @property
    def n_bytes(self) -> int:
        """Bytes of data, as ggml_nbytes computes them for a contiguous tensor."""
        block, size = gguf.GGML_QUANT_SIZES[self.type]
        return self.n_elements // block * size

    @property
    def layer(self) -> int | None:
        """The repeating layer the tensor belongs to, None for embedding/output tensors."""
        if not self.name.startswith("blk."):
            return None
        return int(self.name.split(".", 2)[1])


def tensor_list(shape: ModelShape) -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor of a converted dense model, in GGUF naming, before quantization."""
    h, q, kv = shape.hidden, shape.q_dim, shape.kv_dim
    out: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (h, shape.vocab))]
    if shape.rope_freqs:
        out.append(("rope_freqs.weight", (shape.head_dim // 2,)))
    for i in range(shape.layers):
        p = f"blk.{i}."
        out += [(p + "attn_norm.weight", (h,)), (p + "attn_q.weight", (h, q)), (p + "attn_k.weight", (h, kv)),
                (p + "attn_v.weight", (h, kv))]
        if shape.qkv_bias:
            out += [(p + "attn_q.bias", (q,)), (p + "attn_k.bias", (kv,)), (p + "attn_v.bias", (kv,))]
        out += [(p + "attn_output.weight", (q, h)), (p + "ffn_norm.weight", (h,)),
                (p + "ffn_gate.weight", (h, shape.ffn)), (p + "ffn_up.weight", (h, shape.ffn)),
                (p + "ffn_down.weight", (shape.ffn, h))]
    out.append(("output_norm.weight", (h,)))
    if not shape.tied_embeddings:
        out.append(("output.weight", (h, shape.vocab)))
    return out


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


class _MixRule:
    """The state llama.cpp's rule keeps while it walks the tensors (attn_v / ffn_down counters)."""

    def __init__(self, shape: ModelShape, file_type: str, imatrix: bool) -> None:
        self.shape, self.ftype, self.imatrix = shape, file_type, imatrix
        self.i_attn_v = 0
        self.i_ffn_down = 0
        self.is_70b = shape.layers == 80  # llama.cpp's LLM_TYPE_70B for llama and qwen2

    def output(self, ne0: int, new: T) -> T:
        """output.weight (or the tied token embedding): Q6_K unless the mix is Q8_0 or rows do not fit."""
        block = gguf.GGML_QUANT_SIZES[new][0]
        if ne0 % block != 0:
            return T.Q8_0
        return new if new == T.Q8_0 else T.Q6_K

    def attn_v(self, new: T) -> T:
        f, n = self.ftype, self.shape.layers
        gqa4 = self.shape.gqa >= 4
        if f == "Q2_K":
            new = T.Q4_K if gqa4 else T.Q3_K
        elif f == "Q3_K_M":
            new = T.Q5_K if self.i_attn_v < 2 else T.Q4_K
        elif f == "Q3_K_L" or (f in ("IQ4_NL", "IQ4_XS") and gqa4):
            new = T.Q5_K
        elif f in ("Q4_K_M", "Q5_K_M") and _use_more_bits(self.i_attn_v, n):
            new = T.Q6_K
        elif f == "Q4_K_S" and self.i_attn_v < 4:
            new = T.Q5_K
        if self.is_70b and new in (T.Q3_K, T.Q4_K):
            new = T.Q5_K
        self.i_attn_v += 1
        return new

    def ffn_down(self, new: T) -> T:
        f, i, n = self.ftype, self.i_ffn_down, self.shape.layers
        if f == "Q2_K":
            new = T.Q3_K
        elif f == "Q3_K_M":
            new = T.Q5_K if i < n // 16 else T.Q4_K
        elif f == "Q3_K_L" or (f == "Q4_K_S" and i < n // 8):
            new = T.Q5_K
        elif f == "Q4_K_M":
            if _use_more_bits(i, n):
                new = T.Q6_K
        elif f in ("IQ4_NL", "IQ4_XS") and i < n // 8 and not self.imatrix:
            new = T.Q5_K
        elif f == "Q5_K_M" and _use_more_bits(i, n):
            new = T.Q6_K
        elif f in ("Q4_0", "Q5_0") and self.imatrix and i < n // 8:
            new = T.Q4_1 if f == "Q4_0" else T.Q5_1
        self.i_ffn_down += 1
        return new

    def attn_output(self, new: T) -> T:
        return {"Q2_K": T.Q3_K, "Q3_K_M": T.Q4_K, "Q3_K_L": T.Q5_K}.get(self.ftype, new)

    def choose(self, name: str, ne: tuple[int, ...], default: T) -> T:
        """The type of one quantizable tensor, then the fallback for rows the block does not divide."""
        if name == "output.weight" or (self.shape.tied_embeddings and name == "token_embd.weight"):
            new = self.output(ne[0], default)
        elif name == "token_embd.weight":
            new = default
        elif "attn_v.weight" in name:
            new = self.attn_v(default)
        elif "ffn_down" in name:
            new = self.ffn_down(default)
        elif "attn_output.weight" in name:
            new = self.attn_output(default)
        else:
            new = default
        if ne[0] % gguf.GGML_QUANT_SIZES[new][0] != 0:
            new = _FALLBACK.get(new, T.F16)
            if ne[0] % gguf.GGML_QUANT_SIZES[new][0] != 0:
                new = T.F16
        return new


def _quantizable(name: str, ne: tuple[int, ...]) -> bool:
    return len(ne) >= 2 and name.endswith("weight") and "_norm.weight" not in name


def mixed_tensors(shape: ModelShape, file_type: str, *, imatrix: bool = True) -> list[Tensor]:
    """Each tensor with the type llama.cpp's quantizer gives it for this file type (source: an F16/BF16 GGUF
    whose 1-D tensors are F32, as `localr1 convert` writes it). `imatrix`: the ladder quantizes with one."""
    if file_type not in FILE_TYPES:
        raise UnknownFileTypeError(f"no tensor-type rule for {file_type} (known: {', '.join(FILE_TYPES)})")
    default = FILE_TYPES[file_type][1]
    rule = _MixRule(shape, file_type, imatrix)
    out = []
    for name, ne in tensor_list(shape):
        if not _quantizable(name, ne):
            out.append(Tensor(name, ne, T.F32))
        elif default in _FLOATS:
            out.append(Tensor(name, ne, default))
        else:
            out.append(Tensor(name, ne, rule.choose(name, ne, default)))
    return out
