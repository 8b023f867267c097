"""The quantization types the ladder offers: llama.cpp file types, and the ggml tensor types for overrides."""

from __future__ import annotations

from dataclasses import dataclass

from quantize.errors import UnknownTypeError


@dataclass(frozen=True)
class QuantType:
    """One llama.cpp file type (`LLAMA_FTYPE_MOSTLY_*`)."""

    name: str
    ftype: int
    needs_imatrix: bool = False

    @property
    def is_float(self) -> bool:
        """F32/F16/BF16: a conversion, not a quantization."""
        return self.name in FLOAT_TYPES


# llama.h's enum llama_ftype
_TYPES = [
    QuantType("F32", 0), QuantType("F16", 1), QuantType("BF16", 32),
    QuantType("Q8_0", 7), QuantType("Q6_K", 18),
    QuantType("Q5_K_M", 17), QuantType("Q5_K_S", 16),
    QuantType("Q5_1", 9), QuantType("Q5_0", 8),
    QuantType("Q4_K_M", 15), QuantType("Q4_K_S", 14),
    QuantType("Q4_1", 3), QuantType("Q4_0", 2),
    QuantType("IQ4_NL", 25), QuantType("IQ4_XS", 30),
    QuantType("Q3_K_L", 13), QuantType("Q3_K_M", 12), QuantType("Q3_K_S", 11),
    QuantType("IQ3_M", 27), QuantType("IQ3_S", 26), QuantType("IQ3_XS", 22),
    QuantType("IQ3_XXS", 23, needs_imatrix=True),
    QuantType("Q2_K", 10), QuantType("Q2_K_S", 21, needs_imatrix=True),
    QuantType("IQ2_M", 29, needs_imatrix=True), QuantType("IQ2_S", 28, needs_imatrix=True),
    QuantType("IQ2_XS", 20, needs_imatrix=True), QuantType("IQ2_XXS", 19, needs_imatrix=True),
    QuantType("IQ1_M", 31, needs_imatrix=True), QuantType("IQ1_S", 24, needs_imatrix=True),
]
QUANT_TYPES: dict[str, QuantType] = {t.name: t for t in _TYPES}
FLOAT_TYPES = frozenset({"F32", "F16", "BF16"})
DEFAULT_LADDER = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "Q2_K")

# ggml's enum ggml_type, for --output-type / --embedding-type
TENSOR_TYPES: dict[str, int] = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
    "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14,
    "IQ2_XXS": 16, "IQ2_XS": 17, "IQ3_XXS": 18, "IQ1_S": 19, "IQ4_NL": 20, "IQ3_S": 21, "IQ2_S": 22,
    "IQ4_XS": 23, "IQ1_M": 29, "BF16": 30,
}


def parse_types(spec: str | list[str]) -> list[QuantType]:
    """`Q8_0,q4_k_m` → QuantTypes in the given order, duplicates dropped; unknown names list the valid ones."""
    names = spec.split(",") if isinstance(spec, str) else spec
    out: list[QuantType] = []
    for raw in names:
        name = raw.strip().upper()
        if not name:
            continue
        qtype = QUANT_TYPES.get(name)
        if qtype is None:
            raise UnknownTypeError(f"unknown quantization type '{raw.strip()}' (valid: {', '.join(QUANT_TYPES)})")
        if qtype not in out:
            out.append(qtype)
    if not out:
        raise UnknownTypeError(f"no quantization types given (valid: {', '.join(QUANT_TYPES)})")
    return out


def parse_tensor_type(name: str | None, option: str) -> str | None:
    """A checked ggml tensor type name for an override option; None means llama.cpp's choice."""
    if name is None:
        return None
    value = TENSOR_TYPES.get(name.strip().upper())
    if value is None:
        raise UnknownTypeError(f"unknown tensor type '{name}' for {option} (valid: {', '.join(TENSOR_TYPES)})")
    return name.strip().upper()
