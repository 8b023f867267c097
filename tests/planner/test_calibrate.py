"""Measuring this CPU: real decoding of synthetic models through llama.cpp."""

from __future__ import annotations

import gguf
import pytest

from localr1.planner.mix import tensor_list


@pytest.mark.model
def test_measure_cpu_speed_on_two_types() -> None:
    from localr1.planner.calibrate import SPEED_SHAPE, measure_cpu_speed, pure_tensors, streamed_bytes

    steps: list[tuple[str, float]] = []
    speed = measure_cpu_speed(("Q8_0", "Q4_0"), threads=2, progress=lambda what, done: steps.append((what, done)))
    assert set(speed.type_bandwidth) == set(speed.type_flops) == {"Q8_0", "Q4_0"}
    # between 10 MB/s (a machine busy with other work) and 1 TB/s of weights, which no CPU streams
    assert all(1e7 < bw < 1e12 for bw in speed.type_bandwidth.values())
    assert all(1e7 < f < 1e14 for f in speed.type_flops.values())
    assert speed.threads == 2 and speed.ram_bandwidth > 1e9 and speed.layer_overhead_s >= 0
    # a cost per matrix row for each type, split from the bytes: at most a microsecond (a row is a dot product)
    for table in (speed.type_row_s, speed.type_prompt_row_s):
        assert set(table) == {"Q8_0", "Q4_0"} and all(0 <= r < 1e-6 for r in table.values())
    # an attention rate in FLOP/s (0 when a busy machine made the longer prompt no slower: not measured)
    assert speed.attention_flops == 0 or 1e7 < speed.attention_flops < 1e14
    assert 0 <= speed.prompt_layer_overhead_s < 1e-3
    assert set(speed.repacked_types) <= {"Q8_0", "Q4_0"}
    assert [d for _, d in steps] == sorted(d for _, d in steps) and steps[-1] == ("done", 1.0)
    assert "llama-cpp-python" in speed.source and "load" in speed.source and isinstance(speed.busy, bool)
    # the measured model streams the weights of every layer and the head, not the embedding
    tensors = pure_tensors(SPEED_SHAPE, gguf.GGMLQuantizationType.Q8_0)
    assert len(tensors) == len(tensor_list(SPEED_SHAPE))
    embedding = next(t for t in tensors if t.name == "token_embd.weight")
    assert streamed_bytes(tensors) == sum(t.n_bytes for t in tensors) - embedding.n_bytes


@pytest.mark.model
def test_quantized_sample_is_valid_blocks() -> None:
    from localr1.planner.calibrate import quantized_sample

    for qtype in (gguf.GGMLQuantizationType.Q4_K, gguf.GGMLQuantizationType.IQ4_XS, gguf.GGMLQuantizationType.Q8_0):
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        sample = quantized_sample(qtype, n_per_row=512, rows=4)
        assert len(sample) == 4 * 512 // block * size
    values = gguf.quants.dequantize(
        __import__("numpy").frombuffer(quantized_sample(gguf.GGMLQuantizationType.Q8_0, 256, 2), dtype="uint8"),
        gguf.GGMLQuantizationType.Q8_0)
    assert 0 < float(abs(values).max()) < 1  # small random weights, finite


def test_a_prompt_token_skips_the_last_layers_ffn_and_the_head() -> None:
    from localr1.planner.calibrate import SPEED_SHAPE, prompt_work, pure_tensors

    h, ffn, kv = SPEED_SHAPE.hidden, SPEED_SHAPE.ffn, SPEED_SHAPE.kv_dim
    attention, mlp = h * h + 2 * h * kv + h * h, 3 * h * ffn
    rows, flops = prompt_work(SPEED_SHAPE, pure_tensors(SPEED_SHAPE, gguf.GGMLQuantizationType.Q8_0))
    layers = SPEED_SHAPE.layers
    assert flops == 2 * (layers * attention + (layers - 1) * mlp)
    assert rows == layers * (h + 2 * kv + h) + (layers - 1) * (2 * ffn + h)
