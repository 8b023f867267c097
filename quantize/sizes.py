"""Sizes written by people ('2G', '500M', '4096'), read as llama.cpp's converter reads them (decimal units)."""

from __future__ import annotations

import math

from quantize.errors import ConversionError

_UNITS = {"K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}


class SizeError(ConversionError):
    """A size could not be read."""


def parse_size(text: str) -> int:
    """'2G', '500M', '1.5gb', '4096' -> bytes; anything else (negative, zero, nan, inf, words) is a SizeError."""
    value = text.strip().upper().removesuffix("B")
    scale = _UNITS.get(value[-1:], 1) if value else 1
    number = value[:-1] if value[-1:] in _UNITS else value
    try:
        amount = float(number) * scale
    except ValueError:
        raise SizeError(f"cannot read size '{text}' (use e.g. 2G, 500M or a number of bytes)") from None
    if not math.isfinite(amount):
        raise SizeError(f"cannot read size '{text}' (use e.g. 2G, 500M or a number of bytes)")
    size = int(amount)
    if size <= 0:
        raise SizeError(f"size must be positive, got '{text}'")
    return size
