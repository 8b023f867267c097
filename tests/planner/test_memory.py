"""The memory model: hand-computed arithmetic, and llama.cpp's own buffers and the process's memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from localr1.gguf_header import read_header
from localr1.planner.memory import (
    LIBRARY_PAGES,
    compute_buffer_bytes,
    estimate_memory,
    kv_cache_bytes,
    padded_context,
    slot_devices,
)
from localr1.planner.mix import mixed_tensors
from localr1.planner.shape import ModelShape
from localr1.planner.synthetic import write_synthetic_gguf
from localr1.planner.weights import WeightsLayout
from localr1.registry import load_registry
from tests.fixtures.process_memory import measure_process, planned_part

GiB, MiB = 2**30, 2**20
R1_7B = ModelShape.from_entry(load_registry()["r1-qwen-7b"])
R1_1_5B = ModelShape.from_entry(load_registry()["r1-qwen-1.5b"])


def test_kv_cache_of_the_7b_distill_at_32k() -> None:
    assert kv_cache_bytes(R1_7B, 32768, "f16") == int(1.75 * GiB)  # 28 x 32768 x 512 x 2 x 2 bytes
    assert kv_cache_bytes(R1_7B, 32768, "q8_0") == 28 * 32768 * 2 * (512 // 32 * 34)
    assert kv_cache_bytes(R1_7B, 32768, "q4_0") == 28 * 32768 * 2 * (512 // 32 * 18)
    assert kv_cache_bytes(R1_7B, 32768, "f16", layers=1) * 28 == kv_cache_bytes(R1_7B, 32768, "f16")


def test_context_is_rounded_up_to_256() -> None:
    assert [padded_context(n) for n in (1, 256, 257, 1000, 8192)] == [256, 256, 512, 1024, 8192]


def test_compute_buffer_formula_on_hand_computed_cases() -> None:
    # 1.5B widths, 8192 tokens, ubatch 512, no flash attention: llama.cpp reported 305.75 MiB; the output
    # phase dominates: 512 x 151936 logits x 4 bytes = 296.75 MiB plus two hidden-state rows
    assert abs(compute_buffer_bytes(R1_1_5B, 8192, flash_attention=False) / MiB - 305.75) < 305.75 * 0.02
    # at 32768 tokens the attention scores dominate: 32768 x 512 x 12 heads x 4 bytes = 768 MiB, mask 64 MiB
    assert abs(compute_buffer_bytes(R1_1_5B, 32768, flash_attention=False) / MiB - 848.01) < 848.01 * 0.02
    assert compute_buffer_bytes(R1_1_5B, 32768, flash_attention=True) < 320 * MiB


def test_llama_cpp_offloads_the_output_head_first() -> None:
    assert slot_devices(4, ()) == [-1] * 5
    assert slot_devices(4, (1,)) == [-1, -1, -1, -1, 0]  # one slot: only the head goes to the GPU
    assert slot_devices(4, (2, 3)) == [0, 0, 1, 1, 1]
    assert slot_devices(4, (9,)) == [0] * 5


def test_estimate_adds_up_per_device() -> None:
    weights = WeightsLayout.from_shape(R1_7B, "Q4_K_M")
    cpu_only = estimate_memory(R1_7B, weights, context=8192)
    d = cpu_only.cpu
    assert d.weights == weights.total and d.kv_cache == kv_cache_bytes(R1_7B, 8192)
    assert d.total == d.weights + d.kv_cache + d.compute + d.overhead
    split = estimate_memory(R1_7B, weights, context=8192, gpu_layers=(10, 19))
    assert [g.layers for g in split.gpus] == [10, 18] and split.gpus[1].holds_output
    assert split.cpu.layers == 0 and split.cpu.weights == weights.input.total
    assert sum(g.kv_cache for g in split.gpus) == kv_cache_bytes(R1_7B, 8192)
    assert split.cpu.weights + sum(g.weights for g in split.gpus) == weights.total


def test_a_gpu_holding_a_tied_head_needs_its_own_copy_of_the_embedding() -> None:
    shape = ModelShape("llama", 4, 576, 1536, 9, 3, 64, 49152, 8192, tied_embeddings=True)
    weights = WeightsLayout.from_shape(shape, "Q8_0")
    split = estimate_memory(shape, weights, context=2048, gpu_layers=(5,))
    assert split.gpus[0].weights == weights.total - weights.input.total + weights.streamed_output.total \
        - weights.output.total
    assert split.cpu.weights == weights.input.total


def test_repacked_weights_show_twice_in_rss_but_count_once() -> None:
    weights = WeightsLayout.from_shape(R1_1_5B, "Q4_K_M")
    plain = estimate_memory(R1_1_5B, weights, context=4096)
    repacked = estimate_memory(R1_1_5B, weights, context=4096, repacked_types=frozenset({"Q4_K"}))
    q4k = sum(p.bytes_by_type.get("Q4_K", 0) for p in weights.layers) + weights.output.bytes_by_type.get("Q4_K", 0)
    assert repacked.cpu.total == plain.cpu.total
    assert repacked.cpu.peak_resident - plain.cpu.peak_resident == q4k > 0


def _check(path: Path, context: int, kv: str, flash: bool) -> None:
    header = read_header(path)
    shape = ModelShape.from_header(header)
    weights = WeightsLayout.from_header(header, shape.layers)
    est = estimate_memory(shape, weights, context=context, kv_type=kv, flash_attention=flash,
                          repacked_types=frozenset({"Q4_0", "Q4_K", "IQ4_NL"}))
    m = measure_process(path, context, kv, flash, threads=2)
    buffers = m["buffers"]
    assert isinstance(buffers, dict)
    assert buffers["CPU KV"] == pytest.approx(est.cpu.kv_cache / MiB, abs=0.01)  # the exact formula
    reserved = compute_buffer_bytes(shape, context, flash_attention=flash) / MiB
    assert buffers["CPU compute"] == pytest.approx(reserved, rel=0.02)
    # Python's and the libraries' resident pages vary with the page cache's folio sizes (22-30 MB for the same
    # files): a constant of their own, sanity-checked here; all the rest is predicted within 5%
    for stage in ("load", "fill"):
        assert 0.5 < m[stage]["other_file"] / LIBRARY_PAGES < 2, (stage, m[stage]["other_file"] / MiB)
    load, fill = planned_part(m["load"]), planned_part(m["fill"])
    assert abs((est.cpu.at_load - LIBRARY_PAGES) / load - 1) < 0.05, (est.cpu.at_load / MiB, load / MiB)
    assert abs((est.cpu.peak_resident - LIBRARY_PAGES) / fill - 1) < 0.05, (est.cpu.peak_resident / MiB, fill / MiB)


@pytest.mark.model
def test_demo_memory_predicted_within_5_percent(demo_path: Path) -> None:
    _check(demo_path, 2048, "f16", False)


@pytest.mark.model
def test_synthetic_qwen2_memory_predicted_within_5_percent(tmp_path: Path) -> None:
    from localr1.planner.calibrate import quantized_sample

    shape = ModelShape("qwen2", 8, 512, 1536, 8, 2, 64, 32000, 32768, qkv_bias=True)
    tensors = mixed_tensors(shape, "Q8_0")
    import gguf

    path = write_synthetic_gguf(tmp_path / "small.gguf", shape, tensors,
                                {gguf.GGMLQuantizationType.Q8_0: quantized_sample(gguf.GGMLQuantizationType.Q8_0)},
                                file_type=7)
    _check(path, 2048, "q8_0", True)
