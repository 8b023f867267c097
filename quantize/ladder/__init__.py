"""The ladder: an unquantized base GGUF, an importance matrix, and one quantized GGUF per type.

The base (`base_gguf`, from a GGUF or a checkpoint via `source`), the importance matrix (`imatrix`
collects it in-process, `imatrix_file` stores it, `imatrix_source` picks the user's, the recorded or a
fresh one, on `calibration` conversations), llama.cpp's quantizer (`quantizer`, types in `qtypes`), and
the manifest that records every output and lets a run resume (`manifest`). Entry point: `build_ladder`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantize.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from quantize.ladder.builder import LadderResult, build_ladder
    from quantize.ladder.manifest import Manifest, load_manifest
    from quantize.ladder.options import LadderOptions
    from quantize.ladder.qtypes import DEFAULT_LADDER, QUANT_TYPES, QuantType, parse_types
    from quantize.ladder.quantizer import QuantizeOptions, quantize_file

__all__ = [
    "DEFAULT_LADDER", "QUANT_TYPES", "LadderOptions", "LadderResult", "Manifest", "QuantType", "QuantizeOptions",
    "build_ladder", "load_manifest", "parse_types", "quantize_file",
]
__getattr__ = lazy_exports(__name__, {
    "LadderResult": "builder", "build_ladder": "builder", "Manifest": "manifest", "load_manifest": "manifest",
    "LadderOptions": "options", "DEFAULT_LADDER": "qtypes", "QUANT_TYPES": "qtypes", "QuantType": "qtypes",
    "parse_types": "qtypes", "QuantizeOptions": "quantizer", "quantize_file": "quantizer",
})
