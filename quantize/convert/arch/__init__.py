"""Supported architectures, one module each declaring what differs (names, permutations, metadata).

Looking up any other architecture fails with the list of supported ones.
"""

from __future__ import annotations

from quantize.convert.arch import llama, qwen2
from quantize.convert.arch.decoder import Architecture, GeneratedTensor, TargetTensor, rope_permutation
from quantize.errors import UnsupportedModelError

ARCHITECTURES: dict[str, Architecture] = {a.hf_name: a for a in (qwen2.ARCH, llama.ARCH)}

__all__ = ["ARCHITECTURES", "Architecture", "GeneratedTensor", "TargetTensor", "get_architecture", "rope_permutation"]


def get_architecture(hf_name: str) -> Architecture:
    """The architecture for a config.json 'architectures' entry."""
    arch = ARCHITECTURES.get(hf_name)
    if arch is None:
        raise UnsupportedModelError(
            f"unsupported architecture '{hf_name}' in config.json; supported: {', '.join(sorted(ARCHITECTURES))}"
        )
    return arch
