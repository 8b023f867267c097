"""Peak memory does not grow with the model: tensors stream from the memory map in bounded chunks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.checkpoints import qwen2_spec, write_checkpoint

# VmHWM is the peak RSS of this process image only (ru_maxrss would include the parent's, from before exec).
CHILD = """
import sys
from quantize.convert.converter import convert
convert(sys.argv[1], sys.argv[2], outtype=sys.argv[3])
print(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
"""


def peak_rss_mb(ckpt: Path, out: Path, outtype: str) -> float:
    """Peak RSS of a fresh process that converts `ckpt`."""
    result = subprocess.run([sys.executable, "-c", CHILD, str(ckpt), str(out), outtype],
                            capture_output=True, text=True, check=True)
    out.unlink()
    return int(result.stdout.split()[-1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_peak_rss_does_not_grow_with_tensor_size(tmp_path: Path, llama_ckpt: Path) -> None:
    # a 134 MB embedding and as large an output head (BF16): either alone exceeds the allowed growth
    big = write_checkpoint(tmp_path / "big", qwen2_spec(hidden_size=2048, intermediate_size=256, num_layers=1,
                                                        num_heads=16, num_kv_heads=4, vocab_size=32768),
                           streamed=True)
    assert (big / "model.safetensors").stat().st_size > 250e6
    small = peak_rss_mb(llama_ckpt, tmp_path / "small.gguf", "f16")
    assert small < 150
    for outtype in ("f16", "f32", "q8_0", "bf16"):
        grown = peak_rss_mb(big, tmp_path / "big.gguf", outtype) - small
        assert grown < 100, f"{outtype}: peak RSS grew by {grown:.0f} MB for a 270 MB checkpoint"
