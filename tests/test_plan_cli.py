"""`localr1 plan` run for real: JSON shape, errors, untrusted names, the speed cache, docs/plans.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localr1.hardware import CPUSpeed, cached_speed, probe, save_speed
from localr1.plan_docs import DOC_PATH, render_markdown
from tests.cli_helpers import localr1


def test_plan_json_shape() -> None:
    result = localr1("plan", "r1-qwen-7b", "--hardware", "desktop-32gb-rtx3060", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"model", "hardware", "variant", "context", "kv_type", "flash_attention", "gpu_layers", "tensor_split",
            "threads", "memory", "speed", "budget", "gpus", "notes", "alternatives"} <= set(data)
    assert data["model"] == "r1-qwen-7b" and data["hardware"] == "desktop-32gb-rtx3060"
    assert set(data["variant"]) == {"type", "path", "weights_bytes", "file_bytes", "kld", "kld_source", "accuracy"}
    assert set(data["memory"]) == {"CPU", "GPU0"} and data["gpus"] == ["NVIDIA GeForce RTX 3060"]
    for device in data["memory"].values():
        assert device["total"] == device["weights"] + device["kv_cache"] + device["compute"] + device["overhead"]
    assert data["memory"]["GPU0"]["total"] <= data["budget"]["gpus"][0]
    assert set(data["speed"]) == {"decode_tps", "decode_tps_full_context", "prompt_tps"}
    assert len(data["alternatives"]) == 7 and all(a["reason"] for a in data["alternatives"])


def test_plan_table_for_a_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    result = localr1("plan", "r1-qwen-14b", "--hardware", "desktop-64gb-rtx4090")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Plan for r1-qwen-14b on desktop-64gb-rtx4090" in out and "predicted memory" in out
    assert "alternatives" in out and "GPU0 (NVIDIA GeForce RTX 4090)" in out


def test_no_fit_is_one_line_and_exit_1() -> None:
    result = localr1("plan", "r1-llama-70b", "--hardware", "laptop-8gb")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("localr1: error: r1-llama-70b does not fit this machine")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--hardware", "no-such-profile"], "no hardware profile 'no-such-profile'"),
    (["--ctx", "10"], "--ctx 10 is out of range"),
    (["--gpu-layers", "-2"], "--gpu-layers -2 must be 0 or more"),
    (["--markdown"], "--markdown goes with --all-profiles"),
])
def test_bad_options_are_one_line_errors(args: list[str], message: str) -> None:
    result = localr1("plan", "r1-qwen-7b", "--hardware", "laptop-8gb", *args) if args[0] != "--hardware" \
        else localr1("plan", "r1-qwen-7b", *args)
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("option, value", [
    ("--max-memory", "nan"), ("--max-memory", "1e300"), ("--reserve", "inf"), ("--min-tps", "nan"),
])
def test_float_options_refuse_non_finite_and_huge_values(option: str, value: str) -> None:
    result = localr1("plan", "r1-qwen-7b", "--hardware", "laptop-8gb", f"{option}={value}")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert f"argument {option}: must be a number of" in result.stderr


def test_names_are_printed_as_plain_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    from localr1.planner.mix import mixed_tensors
    from localr1.planner.shape import ModelShape
    from localr1.planner.synthetic import write_synthetic_gguf

    shape = ModelShape("llama", 2, 256, 512, 4, 2, 64, 1000, 32768)
    path = write_synthetic_gguf(tmp_path / "[bold red]evil[blink].gguf", shape, mixed_tensors(shape, "F16"), {})
    result = localr1("plan", str(path), "--hardware", "laptop-8gb")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("[bold red]evil[blink].gguf") == 2  # the title and the variant row


def test_this_machine_uses_the_cached_speed(tmp_path: Path) -> None:
    from localr1.engine.params import default_threads

    profile = probe(check_offload=False)
    speed = CPUSpeed({"Q4_1": 5e9, "Q8_0": 5e9}, {"Q4_1": 5e10}, 1e-4, 1e-5, 1e10, default_threads(), "test seed")
    save_speed(profile, speed)
    assert cached_speed(profile, default_threads()) == speed
    saved = tmp_path / "me.json"
    result = localr1("plan", "demo", "--json", "--save-hardware", str(saved))
    assert result.returncode == 0, result.stderr
    assert "measuring" not in result.stderr  # the cache answered
    data = json.loads(result.stdout)
    assert data["hardware"] == "this machine" and data["variant"]["type"] == "Q4_1"
    # demo: 9 MB per layer at 5 GB/s -> the predicted speed comes from the seeded figures
    assert 10 < data["speed"]["decode_tps"] < 200
    assert json.loads(saved.read_text())["cpu_speed"]["source"] == "test seed"


def test_docs_plans_md_is_up_to_date() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render_markdown(), \
        "docs/plans.md is out of date: run python -m localr1.plan_docs"


def test_all_profiles_markdown_is_the_doc() -> None:
    result = localr1("plan", "--all-profiles", "--markdown", timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == DOC_PATH.read_text(encoding="utf-8")


def test_a_minimum_context_above_the_maximum_is_a_one_line_error() -> None:
    result = localr1("plan", "r1-qwen-7b", "--hardware", "laptop-8gb", "--min-ctx", "65536")  # --max-ctx is 32768
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == ("localr1: error: --min-ctx 65536 is above --max-ctx 32768: raise --max-ctx or lower "
                             "--min-ctx\n")
