"""Quality: is a converted file faithful, and what does each quantized variant cost?

`conversion_check.verify` checks a GGUF against its checkpoint (tokenizer parity, logits against the numpy forward pass
in `reference`, chat template parity through `hf_chat`); `evaluate` measures every variant of a ladder
against its base on held-out text (`metrics`: perplexity, KL divergence, top-1) and `report` writes the
table, `quality.json` and the chart. Entry points: `verify`, `evaluate_ladder`, `write_report`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantize.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from quantize.quality.conversion_check import VerifyReport, verify
    from quantize.quality.evaluate import EvalOptions, ModelQuality, QualityReport, evaluate_ladder
    from quantize.quality.report import quality_table, write_report

__all__ = [
    "EvalOptions", "ModelQuality", "QualityReport", "VerifyReport", "evaluate_ladder", "quality_table", "verify",
    "write_report",
]
__getattr__ = lazy_exports(__name__, {
    "EvalOptions": "evaluate", "ModelQuality": "evaluate", "QualityReport": "evaluate", "evaluate_ladder": "evaluate",
    "quality_table": "report", "write_report": "report",
    "VerifyReport": "conversion_check", "verify": "conversion_check",
})
