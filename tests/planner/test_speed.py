"""The speed model's arithmetic: bytes at each type's rate, a cost per matrix row, fixed costs per layer and token."""

from __future__ import annotations

from pathlib import Path

import pytest

from localr1.gguf_header import read_header
from localr1.hardware import CPUSpeed, load_profile, with_speed
from localr1.planner.calibrate import split_row_cost
from localr1.planner.shape import ModelShape
from localr1.planner.speed import PROMPT_LENGTH, predict_speed
from localr1.planner.weights import Part, WeightsLayout

SHAPE = ModelShape("llama", 2, 256, 512, 4, 2, 64, 1000, 4096)


def _layout(rows: int, last: Part | None = None) -> WeightsLayout:
    layer = Part({"Q4_K": 1_000_000, "F32": 2_000}, {"Q4_K": 1_500_000}, rows_by_type={"Q4_K": rows})
    head = Part({"Q6_K": 500_000}, {"Q6_K": 256_000}, rows_by_type={"Q6_K": 1000})
    return WeightsLayout(layers=(layer, layer), input=Part({"Q4_K": 400_000}, {"Q4_K": 256_000}, {"Q4_K": 1000}),
                         output=head, tied_embeddings=False, last_layer_attention=last)


def _speed(row_s: dict[str, float], prompt_row_s: dict[str, float] | None = None, *, attention: float = 0.0,
           prompt_layer_s: float = 0.0) -> CPUSpeed:
    return CPUSpeed({"Q4_K": 4e10, "Q6_K": 2e10, "F32": 1e10}, {"Q4_K": 1e11, "Q6_K": 5e10}, token_overhead_s=1e-4,
                    layer_overhead_s=2e-5, ram_bandwidth=3e10, threads=2, source="test", type_row_s=row_s,
                    type_prompt_row_s=prompt_row_s or {}, attention_flops=attention,
                    prompt_layer_overhead_s=prompt_layer_s)


def test_decode_time_is_bytes_at_each_types_rate_plus_rows_plus_fixed_costs() -> None:
    hardware = with_speed(load_profile("laptop-16gb"), _speed({"Q4_K": 5e-9, "Q6_K": 1e-8}))
    got = predict_speed(SHAPE, _layout(3000), hardware, context=64)
    layer_s = 1_000_000 / 4e10 + 2_000 / 1e10 + 3000 * 5e-9 + 2e-5
    head_s = 500_000 / 2e10 + 1000 * 1e-8  # the input embedding is not streamed: one row is fetched
    assert 1 / got.decode_tps == pytest.approx(1e-4 + 2 * layer_s + head_s, rel=1e-9)
    without_rows = predict_speed(SHAPE, _layout(3000), with_speed(load_profile("laptop-16gb"), _speed({})),
                                 context=64)
    assert 1 / got.decode_tps - 1 / without_rows.decode_tps == pytest.approx(2 * 3000 * 5e-9 + 1000 * 1e-8)


def test_prompt_time_is_flops_at_the_types_rate_plus_rows() -> None:
    profile = load_profile("laptop-16gb")
    got = predict_speed(SHAPE, _layout(3000), with_speed(profile, _speed({}, {"Q4_K": 2e-9, "Q6_K": 4e-9})),
                        context=64)
    plain = predict_speed(SHAPE, _layout(3000), with_speed(profile, _speed({})), context=64)
    # the head is read for the prompt's last token only, as a decode step reads it: no prompt row cost
    assert 1 / got.prompt_tps - 1 / plain.prompt_tps == pytest.approx(2 * 3000 * 2e-9)
    assert got.decode_tps == plain.decode_tps  # a prompt's row cost is not a decode step's


def test_prompt_time_adds_each_types_flops_attention_and_fixed_costs_and_skips_the_last_ffn() -> None:
    mixed = Part({"Q4_K": 1_000_000, "Q6_K": 500_000}, {"Q4_K": 1_500_000, "Q6_K": 400_000}, {"Q4_K": 3000})
    attention_only = Part({"Q4_K": 200_000}, {"Q4_K": 300_000}, {"Q4_K": 600})
    layout = WeightsLayout(layers=(mixed, mixed), input=Part(), output=Part({"Q6_K": 500_000}, {"Q6_K": 256_000}),
                           tied_embeddings=False, last_layer_attention=attention_only)
    speed = _speed({}, attention=2e10, prompt_layer_s=3e-6)
    got = predict_speed(SHAPE, layout, with_speed(load_profile("laptop-16gb"), speed), context=64)
    attention_s = 4 * SHAPE.q_dim * (PROMPT_LENGTH / 2) / 2e10  # scores and sums at the mean depth
    first = 2 * 1_500_000 / 1e11 + 2 * 400_000 / 5e10 + attention_s + 3e-6  # every type at its own rate
    last = 2 * 300_000 / 1e11 + attention_s + 3e-6  # its FFN runs for the logits' token only
    head = 500_000 / 2e10 / PROMPT_LENGTH
    assert 1 / got.prompt_tps == pytest.approx(first + last + head, rel=1e-9)


def test_more_rows_for_the_same_bytes_decode_slower() -> None:
    hardware = with_speed(load_profile("laptop-16gb"), _speed({"Q4_K": 5e-9}))
    short_rows = predict_speed(SHAPE, _layout(9000), hardware, context=64)
    long_rows = predict_speed(SHAPE, _layout(1000), hardware, context=64)
    assert short_rows.decode_tps < long_rows.decode_tps


def test_the_row_cost_is_split_from_two_timings() -> None:
    per_byte, per_row = 1 / 3e10, 7e-9
    long_rows = (90_000, 100_000_000, 90_000 * per_row + 100_000_000 * per_byte)
    short_rows = (75_000, 16_000_000, 75_000 * per_row + 16_000_000 * per_byte)
    assert split_row_cost(long_rows, short_rows) == pytest.approx((per_byte, per_row))
    # timings too noisy to split (the short-row model slower than its rows and bytes allow): all on the bytes
    noisy = (75_000, 16_000_000, 1.0)
    assert split_row_cost(long_rows, noisy) == (long_rows[2] / long_rows[1], 0.0)


def test_rows_come_from_the_header_matrices(demo_path: Path) -> None:
    header = read_header(demo_path)
    layout = WeightsLayout.from_header(header, ModelShape.from_header(header).layers)
    # SmolLM2-135M: hidden 576, 9 query and 3 KV heads of 64, FFN 1536, 30 layers, tied 49,152-token embedding
    per_layer = 576 + 192 + 192 + 576 + 1536 + 1536 + 576
    assert [sum(p.rows_by_type.values()) for p in layout.layers] == [per_layer] * 30
    assert layout.streamed_output.rows_by_type == {"Q8_0": 49_152}
    # every matrix reads 576 values a row except the FFN's down projection (1,536)
    assert layout.layers[0].params == 576 * (per_layer - 576) + 1536 * 576
    # a prompt runs the last layer's FFN for the logits' token only: its attention matrices are what every token pays
    assert sum(layout.prompt_last_layer.rows_by_type.values()) == 576 + 192 + 192 + 576
    assert layout.prompt_last_layer.params == 576 * (576 + 192 + 192 + 576)
    assert sum(layout.layers[0].params_by_type.values()) == layout.layers[0].params
