"""Planner decisions over every shipped profile, the user's wishes, installed variants, and no-fit errors."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from localr1.hardware import HardwareProfile, load_profile, shipped_profiles
from localr1.plan import (
    USEFUL_CONTEXT,
    NoFitError,
    Plan,
    Wishes,
    _split,
    make_budget,
    make_plan,
)
from localr1.planner.candidates import REFERENCE_KLD, model_candidates
from localr1.planner.memory import estimate_memory
from localr1.registry import load_registry

DISTILLS = [e.key for e in load_registry().values() if e.reasoning]
GB = 1e9


@cache
def plan_for(profile_name: str, model: str) -> Plan | None:
    """The default plan, or None when the model does not fit (computed once per pair)."""
    c = model_candidates(model)
    try:
        return make_plan(c.name, c.shape, c.variants, load_profile(profile_name), smaller_model=c.smaller)
    except NoFitError:
        return None


@pytest.mark.parametrize("profile_name", shipped_profiles())
def test_every_plan_stays_within_every_budget(profile_name: str) -> None:
    profile = load_profile(profile_name)
    budget = make_budget(profile, Wishes())
    for model in DISTILLS:
        plan = plan_for(profile_name, model)
        if plan is None:
            continue
        memory = plan.config.memory
        assert budget.fits(memory)
        assert memory.cpu.total <= budget.ram
        for gpu, limit in zip(memory.gpus, budget.gpus, strict=True):
            assert gpu.total <= limit
        assert plan.config.context >= USEFUL_CONTEXT or plan.notes  # a short context is always explained
        assert plan.threads == profile.physical_cores


@pytest.mark.parametrize("profile_name", shipped_profiles())
def test_plans_are_sane(profile_name: str) -> None:
    profile = load_profile(profile_name)
    plans = {m: plan_for(profile_name, m) for m in DISTILLS}
    # the 1.5B fits everywhere; anything that fits has a useful context
    assert plans["r1-qwen-1.5b"] is not None
    biggest_gpu = max((g.free for g in profile.gpus), default=0)
    if profile.ram_total <= 8 * 2**30:
        assert plans["r1-llama-70b"] is None and plans["r1-qwen-32b"] is None
    if biggest_gpu >= 22 * 2**30 and not any(g.unified for g in profile.gpus):
        fourteen = plans["r1-qwen-14b"]
        assert fourteen is not None
        assert fourteen.config.n_gpu_layers == 49  # 48 layers and the output head: entirely on the GPU
        kld = fourteen.config.variant.kld
        assert kld is not None and kld <= REFERENCE_KLD["Q4_K_M"]
    # a bigger model never gets a better variant or a longer context than a smaller one on the same machine
    fitting = [p for p in plans.values() if p is not None]
    assert all(p.config.speed is not None and p.config.speed.decode_tps > 0 for p in fitting)


def test_a_24_gb_gpu_holds_the_14b_entirely_at_q4_k_m_or_better() -> None:
    plan = plan_for("desktop-64gb-rtx4090", "r1-qwen-14b")
    assert plan is not None
    assert plan.config.memory.cpu.layers == 0 and plan.config.n_gpu_layers == 49
    assert plan.config.variant.file_type in ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M")


def test_q8_0_kv_only_when_f16_would_not_fit() -> None:
    for profile_name in shipped_profiles():
        profile = load_profile(profile_name)
        budget = make_budget(profile, Wishes())
        for model in DISTILLS:
            plan = plan_for(profile_name, model)
            if plan is None or plan.config.kv_type == "f16":
                continue
            c = plan.config
            c_shape = model_candidates(model).shape
            f16 = estimate_memory(c_shape, c.variant.weights, context=c.context, kv_type="f16", flash_attention=True,
                                  gpu_layers=c.gpu_layers, repacked_types=frozenset(profile.cpu_speed.repacked_types
                                                                                  if profile.cpu_speed else ()))
            assert not budget.fits(f16), (profile_name, model)


def test_layers_split_over_two_gpus_in_proportion_to_free_memory() -> None:
    plan = plan_for("workstation-2x24gb", "r1-llama-70b")
    assert plan is not None
    first, second = plan.config.gpu_layers
    assert abs(first - second) <= 1 and first + second == plan.config.n_gpu_layers
    assert _split(10, (1, 3)) == (3, 7) and _split(7, (5, 5)) in ((4, 3), (3, 4)) and sum(_split(81, (2, 3))) == 81


def test_partial_offload_leaves_the_rest_to_the_cpu() -> None:
    plan = plan_for("desktop-32gb-rtx3060", "r1-llama-70b")
    assert plan is not None
    assert 0 < plan.config.n_gpu_layers < 81 and plan.config.memory.cpu.layers > 0
    assert any("layers fit on the GPU" in note for note in plan.notes)


def test_70b_on_the_8_gb_laptop_says_what_it_needs() -> None:
    c = model_candidates("r1-llama-70b")
    with pytest.raises(NoFitError) as info:
        make_plan(c.name, c.shape, c.variants, load_profile("laptop-8gb"), smaller_model=c.smaller)
    message = str(info.value)
    assert "r1-llama-70b does not fit this machine" in message and "Q2_K" in message
    assert "GB of RAM (budget" in message and "r1-qwen-32b" in message and "close other programs" in message
    assert "\n" not in message


def _plan(model: str, profile: str | HardwareProfile, **wishes: object) -> Plan:
    c = model_candidates(model)
    hardware = load_profile(profile) if isinstance(profile, str) else profile
    return make_plan(c.name, c.shape, c.variants, hardware, Wishes(**wishes), smaller_model=c.smaller)  # type: ignore[arg-type]


def test_wishes_override_one_choice_and_the_planner_fills_in_the_rest() -> None:
    assert _plan("r1-qwen-7b", "laptop-16gb", context=4096).config.context == 4096
    quant = _plan("r1-qwen-7b", "laptop-16gb", quant="q4_k_m").config
    assert quant.variant.file_type == "Q4_K_M" and quant.context >= USEFUL_CONTEXT
    kv = _plan("r1-qwen-7b", "laptop-16gb", kv_type="q8_0").config
    assert kv.kv_type == "q8_0" and kv.flash_attention
    cpu_only = _plan("r1-qwen-7b", "desktop-64gb-rtx4090", gpu_layers=0).config
    assert cpu_only.gpu_layers == () and cpu_only.memory.cpu.layers == 28
    partial = _plan("r1-qwen-7b", "desktop-64gb-rtx4090", gpu_layers=10).config
    assert partial.n_gpu_layers == 10
    with pytest.raises(NoFitError, match="no IQ1_M variant"):
        _plan("r1-qwen-7b", "laptop-16gb", quant="IQ1_M")


def test_memory_ceiling_and_reserve_are_respected() -> None:
    roomy = _plan("r1-qwen-7b", "laptop-16gb")
    capped = _plan("r1-qwen-7b", "laptop-16gb", memory_ceiling=int(5 * GB))
    assert capped.config.memory.cpu.total <= 5 * GB < roomy.config.memory.cpu.total
    with pytest.raises(NoFitError):
        _plan("r1-qwen-7b", "laptop-16gb", memory_ceiling=int(1 * GB))


def test_prefer_speed_and_minimum_speed() -> None:
    quality = _plan("r1-qwen-7b", "laptop-16gb").config
    speed = _plan("r1-qwen-7b", "laptop-16gb", prefer="speed").config
    assert speed.speed and quality.speed and speed.speed.decode_tps > quality.speed.decode_tps
    kld = speed.variant.kld
    assert kld is not None and kld <= 0.05  # speed never buys unacceptable quality when better fits
    fast = _plan("r1-qwen-7b", "laptop-16gb", min_tokens_per_s=10.0).config
    assert fast.speed and fast.speed.decode_tps >= 10.0
    impossible = _plan("r1-qwen-7b", "laptop-16gb", min_tokens_per_s=1000.0)
    assert any("nothing reaches" in note for note in impossible.notes)


def test_short_context_is_a_note_not_an_error() -> None:
    plan = _plan("r1-qwen-7b", replace(load_profile("laptop-8gb"), ram_available=int(4.75 * GB)))
    # Q2_K would fit 16k tokens, but it is too poor for reasoning: Q3_K_M with a short context wins
    assert plan.config.variant.file_type == "Q3_K_M" and plan.config.context < USEFUL_CONTEXT
    assert any("tokens of context fit" in note for note in plan.notes)
    reasons = {a.variant.file_type: a.reason for a in plan.alternatives}
    assert reasons["Q2_K"].startswith("quality too low for reasoning")
    last_resort = _plan("r1-qwen-7b", replace(load_profile("laptop-8gb"), ram_available=int(4.6 * GB)))
    assert last_resort.config.variant.file_type == "Q2_K"  # nothing else fits at all


def test_alternatives_say_why_they_lost() -> None:
    plan = _plan("r1-qwen-14b", "desktop-32gb-rtx3060")
    reasons = {a.variant.file_type: a.reason for a in plan.alternatives}
    assert set(reasons) | {plan.config.variant.file_type} == {"F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS",
                                                              "Q3_K_M", "Q2_K"}
    assert "too slow" in reasons["Q8_0"] and "lower quality" in reasons["Q3_K_M"]
    assert "quality too low for reasoning" in reasons["Q2_K"]
    tiny = _plan("r1-qwen-14b", "laptop-16gb")
    assert any(a.config is None and "does not fit" in a.reason for a in tiny.alternatives)


def test_installed_variants_use_their_measured_quality(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from localr1.planner.mix import mixed_tensors
    from localr1.planner.shape import ModelShape
    from localr1.planner.synthetic import write_synthetic_gguf

    folder = tmp_path / "ladder"
    folder.mkdir()
    shape = ModelShape("qwen2", 2, 256, 512, 4, 2, 64, 1000, 32768, qkv_bias=True)
    for name, file_type in (("m-F16.gguf", 1), ("m-Q8_0.gguf", 7)):
        tensors = mixed_tensors(shape, "F16")  # the bytes of a Q8_0 file are not needed: sizes come from the header
        write_synthetic_gguf(folder / name, shape, tensors, {}, file_type=file_type)
    (folder / "quality.json").write_text(json.dumps({
        "format": "localr1.quality-report", "base": {"name": "F16", "file": str(folder / "m-F16.gguf")},
        "variants": [{"name": "Q8_0", "file": str(folder / "m-Q8_0.gguf"), "kld_mean": 0.0123}],
    }))
    candidates = model_candidates(str(folder))
    by_type = {v.file_type: v for v in candidates.variants}
    assert by_type["Q8_0"].kld == 0.0123 and by_type["Q8_0"].kld_source == "measured (quality.json)"
    assert by_type["F16"].kld == 0.0
    plan = make_plan(candidates.name, candidates.shape, candidates.variants, load_profile("laptop-16gb"))
    assert plan.config.variant.path is not None and plan.config.variant.path.parent == folder
    assert json.loads(json.dumps(plan.to_json()))["variant"]["kld_source"].startswith(("measured", "reference"))


def test_a_gpu_the_build_cannot_use_is_named() -> None:
    profile = replace(load_profile("desktop-32gb-rtx3060"), gpu_offload=False)
    plan = _plan("r1-qwen-7b", profile)
    assert plan.config.gpu_layers == () and plan.budget.gpus == ()
    assert any("cannot offload" in note and "GGML_CUDA" in note for note in plan.notes)


def test_a_file_with_the_r1_template_is_planned_as_a_reasoning_model(r1_vocab_path: Path, demo_path: Path) -> None:
    from localr1.planner.candidates import is_reasoning_file

    assert is_reasoning_file(r1_vocab_path) and not is_reasoning_file(demo_path)
    assert not model_candidates(str(demo_path)).reasoning


def test_a_speed_measured_on_a_busy_machine_is_flagged() -> None:
    profile = load_profile("laptop-16gb")
    assert profile.cpu_speed is not None
    busy = replace(profile, cpu_speed=replace(profile.cpu_speed, busy=True))
    assert not any("--measure" in note for note in _plan("r1-qwen-7b", profile).notes)
    assert any("--measure" in note for note in _plan("r1-qwen-7b", busy).notes)


@pytest.mark.parametrize("key, value, message", [
    ("llama__block_count", 0, "layers is 0"),
    ("llama__block_count", 20, "block_count 20 but tensors for layers 0 to 29"),  # was an IndexError traceback
    ("llama__block_count", 40, "block_count 40 but tensors for layers 0 to 29"),  # was planned with 10 empty layers
    ("llama__attention__head_count_kv", 0, "kv_heads is 0"),  # was planned with no KV cache at all
])
def test_a_header_with_an_impossible_shape_is_a_one_line_error(demo_path: Path, tmp_path: Path, key: str,
                                                               value: int, message: str) -> None:
    import gguf

    from localr1.errors import ModelFileError
    from localr1.planner.candidates import file_variant
    from tests.gguf_edit import rewrite_gguf

    changes: dict[str, Any] = {key: (gguf.GGUFValueType.UINT32, value)}
    bad = rewrite_gguf(demo_path, tmp_path / "bad.gguf", **changes)
    with pytest.raises(ModelFileError, match=f"declares an impossible model shape \\({message}\\)"):
        file_variant(bad)


def test_a_context_the_model_cannot_hold_is_not_blamed_on_memory() -> None:
    # 48 GB of GPU: memory is not what limits the 7B's context; its 131072 trained tokens are
    plan = _plan("r1-qwen-7b", "workstation-2x24gb", min_context=1_048_576, max_context=1_048_576)
    assert plan.config.context == 131_072
    assert plan.notes[0] == ("r1-qwen-7b is planned with at most 131072 tokens of context (the 131072 it was "
                             "trained on), less than the 1048576 wanted")
    assert not any("closing programs" in note for note in plan.notes)
    capped = _plan("r1-qwen-7b", "workstation-2x24gb", min_context=65_536, max_context=32_768)
    assert "(--max-ctx 32768)" in capped.notes[0]


def test_an_exact_context_beyond_the_trained_one_says_so() -> None:
    plan = _plan("r1-qwen-7b", "workstation-2x24gb", context=262_144)
    assert plan.config.context == 262_144
    assert "262144 tokens is beyond the 131072 r1-qwen-7b was trained on" in plan.notes[0]
