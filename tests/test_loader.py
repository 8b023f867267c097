"""The runtime loads what the planner chooses, honours each override, and falls back to a cheaper plan when
llama.cpp runs out of memory."""

from __future__ import annotations

import itertools
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from localr1.engine.params import LoadRequest
from localr1.errors import ConfigError, ModelMemoryError
from localr1.hardware import CPUSpeed, HardwareProfile, probe, with_speed
from localr1.loader import LoadAttempt, load_planned, open_engine, plan_for
from tests.cli_helpers import localr1

TB = 10**12
SPEED = CPUSpeed({"Q4_1": 5e9, "Q8_0": 5e9, "F16": 5e9}, {"Q4_1": 5e10}, 1e-4, 1e-5, 1e10, 2, "test seed")


@pytest.fixture(scope="module")
def machine() -> HardwareProfile:
    """This machine as probed (no GPU offload), with a seeded CPU speed."""
    return with_speed(probe(check_offload=False), SPEED)


class FailingMaker:
    """Stands in for the engine: raises llama.cpp's out-of-memory error for the first `failures` attempts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: list[LoadAttempt] = []

    def __call__(self, attempt: LoadAttempt) -> LoadAttempt:
        self.attempts.append(attempt)
        if len(self.attempts) <= self.failures:
            raise ModelMemoryError("llama.cpp could not allocate the memory to load x (failed to allocate buffer)")
        return attempt


def test_the_planner_fills_in_every_choice_left_open(machine: HardwareProfile) -> None:
    maker = FailingMaker(0)
    attempt = load_planned("demo", LoadRequest(), None, maker, hardware=machine)
    p = attempt.params
    assert p.context_size == 8192  # the demo's own limit: everything fits here
    assert (p.kv_cache_type, p.flash_attention, p.gpu_layers, p.threads) == ("f16", True, 0, machine.physical_cores)
    assert attempt.facts["device_split"] == "CPU only" and attempt.facts["fallbacks"] == []
    assert attempt.prediction is not None and attempt.prediction.decode_tps == attempt.facts["speed"]["decode_tps"]


def test_each_override_is_kept_and_the_rest_planned(machine: HardwareProfile) -> None:
    request = LoadRequest(context_size=1024, kv_cache_type="q8_0", threads=1)
    attempt = load_planned("demo", request, {"temperature": 0.1}, FailingMaker(0), hardware=machine)
    p = attempt.params
    assert (p.context_size, p.kv_cache_type, p.flash_attention, p.threads) == (1024, "q8_0", True, 1)
    assert attempt.sampling.temperature == 0.1


def test_a_quantized_kv_cache_without_flash_attention_is_refused(machine: HardwareProfile) -> None:
    with pytest.raises(ConfigError, match="needs flash attention"):
        load_planned("demo", LoadRequest(kv_cache_type="q8_0", flash_attention=False), None, FailingMaker(0),
                     hardware=machine)


def test_a_path_loads_exactly_that_file(machine: HardwareProfile, demo_path: Path, tmp_path: Path) -> None:
    copy = shutil.copy(demo_path, tmp_path / "my copy.gguf")
    attempt = load_planned(str(copy), LoadRequest(), None, FailingMaker(0), hardware=machine)
    assert attempt.path == Path(copy) and attempt.params.context_size == 8192


def test_out_of_memory_falls_back_to_the_next_plan_and_says_so(machine: HardwareProfile) -> None:
    said: list[str] = []
    maker = FailingMaker(1)
    attempt = load_planned("demo", LoadRequest(), None, maker, hardware=machine, notify=said.append)
    first, second = maker.attempts
    assert second.facts["ram_bytes"] <= 0.8 * first.facts["ram_bytes"]  # a q8_0 cache, or a shorter context
    assert len(said) == 1 and said[0].startswith("llama.cpp could not allocate the memory for Q4_1 with 8192 tokens")
    assert "falling back to Q4_1" in said[0] and attempt.facts["fallbacks"] == said


def test_a_pinned_context_is_given_up_only_when_nothing_else_fits(machine: HardwareProfile) -> None:
    huge = replace(machine, ram_available=10 * TB)
    said: list[str] = []
    maker = FailingMaker(2)
    attempt = load_planned("demo", LoadRequest(context_size=8_000_000), None, maker, hardware=huge,
                           notify=said.append)
    tried = [(a.params.context_size, a.params.kv_cache_type) for a in maker.attempts]
    assert tried == [(8_000_000, "f16"), (8_000_000, "q8_0"), (8192, "f16")]  # a smaller cache type first
    assert len(said) == 2 and all("with 8000000 tokens" in line for line in said)
    assert attempt.params.context_size == 8192


def test_when_no_plan_fits_the_error_is_one_line(machine: HardwareProfile) -> None:
    maker = FailingMaker(100)
    with pytest.raises(ModelMemoryError, match="no smaller plan fits either"):
        load_planned("demo", LoadRequest(), None, maker, hardware=machine)
    used = [a.facts["ram_bytes"] for a in maker.attempts]
    assert len(used) > 1 and all(later <= 0.8 * earlier for earlier, later in itertools.pairwise(used))


@pytest.mark.model
def test_llama_cpps_real_refusal_falls_back(machine: HardwareProfile) -> None:
    """A probe that overstates memory (a container limit it cannot see): 8M tokens of context are planned,
    llama.cpp refuses the 184 GB KV cache at once (and the 97 GB q8_0 one), and the runtime loads the next plan."""
    said: list[str] = []
    engine = open_engine("demo", LoadRequest(context_size=8_000_000), notify=said.append,
                         hardware=replace(machine, ram_available=10 * TB))
    try:
        assert engine.context_size == 8192
        assert len(said) == 2 and all("could not allocate the memory for Q4_1 with 8000000 tokens" in s for s in said)
        facts = engine.describe()
        assert facts["plan"]["fallbacks"] == said and facts["predicted_tokens_per_s"] > 0
    finally:
        engine.close()


def test_plan_for_a_key_not_installed_says_how_to_get_it() -> None:
    from localr1.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="localr1 quantize"):
        plan_for("r1-qwen-7b", LoadRequest())


@pytest.mark.model
def test_run_shows_the_plan_in_one_line_and_in_json() -> None:
    shown = localr1("run", "-n", "2", "-t", "0", "--ctx", "2048", "Hi")
    assert shown.returncode == 0, shown.stderr
    plan_lines = [line for line in shown.stderr.splitlines() if line.startswith("localr1: plan: ")]
    assert len(plan_lines) == 1 and "2048 tokens, f16 KV, flash attention, CPU only" in plan_lines[0]
    as_json = localr1("run", "--json", "-n", "2", "-t", "0", "--kv-type", "q8_0", "Hi")
    assert as_json.returncode == 0 and "plan:" not in as_json.stderr
    import json

    data = json.loads(as_json.stdout)
    assert data["plan"]["kv_type"] == data["load"]["kv_cache_type"] == "q8_0" and data["load"]["flash_attention"]
    assert data["plan"]["context"] == data["load"]["context_size"] == 8192 and data["notices"] == []
