"""What a ladder run builds and how: the options shared by the builder and the importance-matrix step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from quantize.ladder.qtypes import QuantType
from quantize.ladder.quantizer import QuantizeOptions


@dataclass(frozen=True)
class LadderOptions:
    """What to build and how."""

    types: list[QuantType]
    quantize: QuantizeOptions = field(default_factory=QuantizeOptions)
    use_imatrix: bool = True
    imatrix_file: Path | None = None
    calibration: Path | None = None
    calibration_tokens: int = 4096
    calibration_ctx: int = 512
    base_type: str = "f16"
    name: str | None = None
    rehash: bool = False
