"""The planner prefers measured task accuracy over KLD when every variant in the running has it, and says so."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from localr1.hardware import load_profile
from localr1.plan import Plan, Wishes, make_plan
from localr1.planner.candidates import Accuracy, Variant, model_candidates
from tests.cli_helpers import localr1

ACCURACY = {"F16": 0.80, "Q8_0": 0.80, "Q6_K": 0.79, "Q5_K_M": 0.70, "Q4_K_M": 0.82, "IQ4_XS": 0.60,
            "Q3_K_M": 0.50, "Q2_K": 0.30}


def _measured(v: Variant, value: float) -> Variant:
    return replace(v, accuracy=Accuracy(value, value - 0.1, min(1.0, value + 0.1), 60, 1, "problems.jsonl"))


def _plan(variants: list[Variant], **wishes: object) -> Plan:
    c = model_candidates("r1-qwen-7b")
    return make_plan(c.name, c.shape, variants, load_profile("desktop-64gb-rtx4090"), Wishes(**wishes))  # type: ignore[arg-type]


def test_measured_accuracy_decides_over_kld() -> None:
    ladder = model_candidates("r1-qwen-7b").variants
    by_kld = _plan(ladder)
    assert by_kld.config.variant.file_type in ("F16", "Q8_0")  # on a 24 GB GPU, KLD picks the top of the ladder
    measured = [_measured(v, ACCURACY[v.file_type]) for v in ladder]
    plan = _plan(measured)
    assert plan.config.variant.file_type == "Q4_K_M"
    assert any("chosen by measured task accuracy" in n and "82.0%" in n for n in plan.notes)
    reasons = {a.variant.file_type: a.reason for a in plan.alternatives}
    assert reasons["F16"].startswith("lower task accuracy: 80.0% vs 82.0%")
    assert "quality too low for reasoning" in reasons["Q2_K"]  # KLD's hard floor still rules out Q2_K


def test_an_accuracy_difference_under_one_point_goes_to_speed() -> None:
    ladder = model_candidates("r1-qwen-7b").variants
    close = {**ACCURACY, "Q4_K_M": 0.795, "Q8_0": 0.80}
    plan = _plan([_measured(v, close[v.file_type]) for v in ladder])
    assert plan.config.variant.file_type == "Q4_K_M"  # 0.5 points below Q8_0 and F16, and faster
    reasons = {a.variant.file_type: a.reason for a in plan.alternatives}
    assert "for an accuracy difference under 1 point" in reasons["Q8_0"]


def test_partly_measured_ladders_are_chosen_by_kld() -> None:
    ladder = model_candidates("r1-qwen-7b").variants
    partly = [_measured(v, 0.99) if v.file_type == "Q4_K_M" else v for v in ladder]
    plan = _plan(partly)
    assert plan.config.variant.file_type == _plan(ladder).config.variant.file_type
    assert any("measured for only some" in n for n in plan.notes)


def test_prefer_speed_keeps_its_rule() -> None:
    ladder = model_candidates("r1-qwen-7b").variants
    measured = [_measured(v, ACCURACY[v.file_type]) for v in ladder]
    fastest = _plan(ladder, prefer="speed").config.variant.file_type
    assert _plan(measured, prefer="speed").config.variant.file_type == fastest


def _ladder_folder(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    from localr1.planner.mix import mixed_tensors
    from localr1.planner.shape import ModelShape
    from localr1.planner.synthetic import write_synthetic_gguf

    folder = tmp_path / "ladder"
    folder.mkdir()
    shape = ModelShape("qwen2", 2, 256, 512, 4, 2, 64, 1000, 32768, qkv_bias=True)
    for name, file_type in (("m-F16.gguf", 1), ("m-Q8_0.gguf", 7)):
        write_synthetic_gguf(folder / name, shape, mixed_tensors(shape, "F16"), {}, file_type=file_type)
    sizes = {p.name: p.stat().st_size for p in folder.glob("*.gguf")}
    models = [{"complete": True, "size": sizes.get(str(r["file"]), 0), **r} for r in rows]
    (folder / "quality.json").write_text(json.dumps({
        "format": "localr1.quality-report", "version": 1,
        "base": {"name": "F16", "file": str(folder / "m-F16.gguf")},
        "variants": [{"name": "Q8_0", "file": "m-Q8_0.gguf", "kld_mean": 0.0123}],
        "tasks": {"source": "/x/problems.jsonl", "problems": 40, "samples": 4, "models": models},
    }))
    return folder


def test_accuracy_is_read_from_quality_json(tmp_path: Path) -> None:
    folder = _ladder_folder(tmp_path, [
        {"file": "m-F16.gguf", "accuracy": 0.5, "ci_low": 0.35, "ci_high": 0.65},
        {"file": "m-Q8_0.gguf", "accuracy": 0.625, "ci_low": 0.47, "ci_high": 0.76},
    ])
    by_type = {v.file_type: v for v in model_candidates(str(folder)).variants}
    q8 = by_type["Q8_0"].accuracy
    assert q8 == Accuracy(0.625, 0.47, 0.76, 40, 4, "problems.jsonl")
    assert q8.describe() == "62.5% (47.0-76.0%) on 40 problems of problems.jsonl, 4 samples each"
    assert by_type["F16"].accuracy is not None and by_type["F16"].accuracy.value == 0.5
    single = model_candidates(str(folder / "m-Q8_0.gguf")).variants[0]
    assert single.accuracy == q8


@pytest.mark.parametrize("change", [{"complete": False}, {"size": 1}, {"accuracy": "high"}, {"file": "other.gguf"}])
def test_unusable_rows_are_not_measurements(tmp_path: Path, change: dict[str, object]) -> None:
    row = {"file": "m-Q8_0.gguf", "accuracy": 0.625, "ci_low": 0.47, "ci_high": 0.76}
    folder = _ladder_folder(tmp_path, [row])
    document = json.loads((folder / "quality.json").read_text())
    document["tasks"]["models"][0].update(change)
    (folder / "quality.json").write_text(json.dumps(document))
    by_type = {v.file_type: v for v in model_candidates(str(folder)).variants}
    assert by_type["Q8_0"].accuracy is None


def test_plan_shows_the_accuracy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _ladder_folder(tmp_path, [
        {"file": "m-F16.gguf", "accuracy": 0.5, "ci_low": 0.35, "ci_high": 0.65},
        {"file": "m-Q8_0.gguf", "accuracy": 0.625, "ci_low": 0.47, "ci_high": 0.76},
    ])
    monkeypatch.setenv("COLUMNS", "250")
    result = localr1("plan", str(folder), "--hardware", "laptop-16gb")
    assert result.returncode == 0, result.stderr
    assert "task accuracy 62.5% (47.0-76.0%) on 40 problems" in result.stdout
    assert "chosen by measured task accuracy" in result.stdout
    assert "accuracy %" in result.stdout and "lower task accuracy: 50.0% vs 62.5%" in result.stdout
    data = json.loads(localr1("plan", str(folder), "--hardware", "laptop-16gb", "--json").stdout)
    assert data["variant"]["type"] == "Q8_0" and data["variant"]["accuracy"]["value"] == 0.625
    assert data["alternatives"][0]["variant"]["accuracy"]["value"] == 0.5
