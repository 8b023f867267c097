"""Conversion: a checkpoint folder (config, sharded safetensors, tokenizer) → one GGUF file.

The checkpoint reader (`checkpoint`, `config`, `safetensors_io`), the tensor plan that maps every source
tensor to its GGUF name and shape (`tensor_plan`, with one module per architecture in `arch/`), the
vocabulary and chat template (`tokenizer`), dtype kernels (`dtypes`, `fastcast`), and the streaming
writer (`stream`, `writer`). Entry point: `convert`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantize.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from quantize.convert.checkpoint import Checkpoint, open_checkpoint
    from quantize.convert.converter import ConversionResult, ConvertProgress, convert

__all__ = ["Checkpoint", "ConversionResult", "ConvertProgress", "convert", "open_checkpoint"]
__getattr__ = lazy_exports(__name__, {
    "Checkpoint": "checkpoint", "open_checkpoint": "checkpoint",
    "ConversionResult": "converter", "ConvertProgress": "converter", "convert": "converter",
})
