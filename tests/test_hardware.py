"""The hardware probe against fake tools and sysfs trees, and profiles as JSON."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from localr1.errors import ConfigError
from localr1.hardware import (
    GPU,
    CPUSpeed,
    HardwareProfile,
    apple_working_set,
    cached_speed,
    load_profile,
    probe,
    save_speed,
    shipped_profiles,
    speed_cache_path,
)

GiB = 2**30


def _tool(folder: Path, name: str, script: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only a folder of fake tools (plus what /bin/sh needs)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}/bin{os.pathsep}/usr/bin")
    return tools


def _amd_card(root: Path, card: str, vendor: str, total: int, used: int, *, name: str | None = None) -> None:
    device = root / "class" / "drm" / card / "device"
    device.mkdir(parents=True)
    (device / "vendor").write_text(vendor + "\n")
    (device / "mem_info_vram_total").write_text(f"{total}\n")
    (device / "mem_info_vram_used").write_text(f"{used}\n")
    if name:
        (device / "product_name").write_text(name + "\n")


def test_nvidia_gpus_from_nvidia_smi(bare_path: Path, tmp_path: Path) -> None:
    _tool(bare_path, "nvidia-smi", 'echo "NVIDIA GeForce RTX 3060, 12288, 11500"\necho "Tesla T9000, 81920, 80000"\n')
    profile = probe(tmp_path, sys_root=tmp_path / "nosys", check_offload=False)
    assert [(g.name, g.vendor, g.total, g.free) for g in profile.gpus] == [
        ("NVIDIA GeForce RTX 3060", "nvidia", 12288 * 2**20, 11500 * 2**20),
        ("Tesla T9000", "nvidia", 81920 * 2**20, 80000 * 2**20),
    ]
    assert profile.gpus[0].bandwidth == 360e9 and profile.gpus[0].spec_known
    assert not profile.gpus[1].spec_known and profile.gpus[1].bandwidth == 300e9  # the conservative default


def test_broken_nvidia_smi_means_no_gpu(bare_path: Path, tmp_path: Path) -> None:
    _tool(bare_path, "nvidia-smi", 'echo "NVIDIA-SMI has failed" >&2\nexit 9\n')
    assert probe(tmp_path, sys_root=tmp_path / "nosys", check_offload=False).gpus == ()
    _tool(bare_path, "nvidia-smi", 'echo "garbage line"\necho "a, b, c"\n')
    assert probe(tmp_path, sys_root=tmp_path / "nosys", check_offload=False).gpus == ()


def test_amd_gpus_from_sysfs(bare_path: Path, tmp_path: Path) -> None:
    root = tmp_path / "sys"
    _amd_card(root, "card0", "0x1002", 24 * GiB, 2 * GiB, name="AMD Radeon RX 7900 XTX")
    _amd_card(root, "card1", "0x10de", 8 * GiB, 0)  # an NVIDIA card: not read from sysfs
    _amd_card(root, "card2", "0x1002", 4 * GiB, 0)
    (root / "class" / "drm" / "card0-DP-1").mkdir()  # a connector, not a card
    profile = probe(tmp_path, sys_root=root, check_offload=False)
    assert [(g.name, g.total, g.free) for g in profile.gpus] == [
        ("AMD Radeon RX 7900 XTX", 24 * GiB, 22 * GiB), ("AMD GPU card2", 4 * GiB, 4 * GiB),
    ]
    assert profile.gpus[0].bandwidth == 960e9


def test_apple_silicon_unified_memory(bare_path: Path, tmp_path: Path) -> None:
    _tool(bare_path, "sysctl", 'case "$2" in\n machdep.cpu.brand_string) echo "Apple M2 Pro";;\n'
                               ' hw.memsize) echo 34359738368;;\n iogpu.wired_limit_mb) echo 0;;\n esac\n')
    profile = probe(tmp_path, system="Darwin", check_offload=False)
    assert profile.os == "darwin" and profile.cpu_model == "Apple M2 Pro" and profile.ram_total == 32 * GiB
    (gpu,) = profile.gpus
    assert gpu.unified and gpu.total == 32 * GiB * 2 // 3 and gpu.bandwidth == 200e9
    _tool(bare_path, "sysctl", 'case "$2" in\n machdep.cpu.brand_string) echo "Apple M3 Max";;\n'
                               ' hw.memsize) echo 137438953472;;\n iogpu.wired_limit_mb) echo 120000;;\n esac\n')
    assert probe(tmp_path, system="Darwin", check_offload=False).gpus[0].total == 120000 * 2**20


def test_working_set_rule() -> None:
    assert apple_working_set(16 * GiB) == 16 * GiB * 2 // 3
    assert apple_working_set(36 * GiB) == 24 * GiB
    assert apple_working_set(64 * GiB) == 48 * GiB
    assert apple_working_set(64 * GiB, wired_limit_mb=60000) == 60000 * 2**20


def test_nothing_to_probe_degrades_to_a_cpu_only_profile(bare_path: Path, tmp_path: Path) -> None:
    profile = probe(tmp_path / "missing" / "models", sys_root=tmp_path / "nosys", proc_root=tmp_path / "noproc",
                    check_offload=False)
    assert profile.gpus == () and not profile.gpu_offload
    assert profile.ram_total > 0 and profile.physical_cores >= 1 and profile.disk_free is not None
    mac = probe(tmp_path, system="Darwin", check_offload=False)  # no sysctl on PATH
    assert mac.gpus == ()


def test_this_machine(tmp_path: Path) -> None:
    profile = probe(tmp_path)
    assert profile.ram_available <= profile.ram_total
    if Path("/proc/cpuinfo").exists():
        assert profile.cpu_model
    assert isinstance(profile.gpu_offload, bool)


def test_profiles_round_trip_through_json(tmp_path: Path) -> None:
    speed = CPUSpeed({"Q4_K": 4e10}, {"Q4_K": 2e11}, 1e-4, 2e-5, 3e10, 8, "test", ("Q4_K",))
    profile = HardwareProfile("box", "linux", "CPU", 8, 16, 32 * GiB, 20 * GiB, ("avx2",), 10**12,
                              (GPU("GPU", "nvidia", 8 * GiB, 7 * GiB, 3e11, 2e13),), True, speed, "a box")
    path = tmp_path / "box.json"
    path.write_text(json.dumps(profile.to_json()))
    assert load_profile(str(path)) == profile


@pytest.mark.parametrize("name", shipped_profiles())
def test_shipped_profiles_load(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name and profile.cpu_speed is not None and profile.description
    assert profile.ram_available < profile.ram_total
    assert all(g.free <= g.total for g in profile.gpus)


def test_bad_profiles_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no hardware profile 'nope': give a JSON file or one of"):
        load_profile("nope")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read hardware profile"):
        load_profile(str(bad))
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(ConfigError, match="not a valid hardware profile"):
        load_profile(str(bad))
    data = load_profile("laptop-8gb").to_json()
    data["ram_total"] = -1
    bad.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="'ram_total' must be a positive integer"):
        load_profile(str(bad))


def test_measured_speed_is_cached_per_machine(tmp_path: Path) -> None:
    profile = probe(tmp_path, check_offload=False)
    assert cached_speed(profile, 2) is None
    speed = CPUSpeed({"Q8_0": 1e10}, {"Q8_0": 1e11}, 1e-4, 1e-5, 2e10, 2, "test", ("Q4_0",))
    save_speed(profile, speed)
    assert cached_speed(profile, 2) == speed
    assert cached_speed(profile, 4) is None  # another thread count is another measurement
    other = HardwareProfile(**{**profile.__dict__, "cpu_model": "another CPU"})
    assert cached_speed(other, 2) is None


def test_two_measurements_saved_at_once_both_succeed(tmp_path: Path) -> None:
    """Two `plan --measure` at once: each writer has a temporary file of its own (a shared name made one
    writer's rename fail with FileNotFoundError after minutes of measuring)."""
    import threading

    profile = probe(tmp_path, check_offload=False)
    errors: list[BaseException] = []

    def saver(source: str) -> None:
        for _ in range(200):
            try:
                save_speed(profile, CPUSpeed({"Q8_0": 1e10}, {"Q8_0": 1e11}, 1e-4, 1e-5, 2e10, 2, source))
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=saver, args=(f"writer {i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    cached = cached_speed(profile, 2)
    assert cached is not None and cached.source.startswith("writer ")  # one writer's file, whole
    assert [p.name for p in speed_cache_path(profile, 2).parent.iterdir()] == [speed_cache_path(profile, 2).name]


def _edited(name: str, edit: Any) -> dict[str, Any]:
    data = load_profile(name).to_json()
    edit(data)
    return data


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["gpus"][0].update(total=-12 * GiB, free=-1), "GPU 0: 'total' must be a positive integer"),
    (lambda d: d["gpus"][0].update(total="12G"), "GPU 0: 'total' must be a positive integer"),
    (lambda d: d["gpus"][0].update(free=d["gpus"][0]["total"] + 1), "'free' an integer from 0 to 'total'"),
    (lambda d: d["gpus"][0].update(bandwidth=0), "GPU 0: 'bandwidth' and 'flops' must be positive"),
    (lambda d: d["cpu_speed"]["type_bandwidth"].update(Q4_K=0.0), "'type_bandwidth' must map each type"),
    (lambda d: d["cpu_speed"]["type_flops"].update(Q4_K=-1.0), "'type_flops' must map each type"),
    (lambda d: d["cpu_speed"].update(token_overhead_s=float("nan")), "'token_overhead_s' must be a non-negative"),
    (lambda d: d["cpu_speed"].update(ram_bandwidth=0), "'ram_bandwidth' must be a positive number"),
    (lambda d: d["cpu_speed"].update(threads=0), "'threads' must be a positive integer"),
    (lambda d: d.update(ram_total=True), "'ram_total' must be a positive integer"),
    (lambda d: d.update(logical_cpus=0), "'logical_cpus' must be a positive integer"),
    (lambda d: d.update(cpu_flags="avx2"), "'cpu_flags' must be a list"),
    (lambda d: d["cpu_speed"].update(attention_flops="fast"), "'attention_flops' must be 0"),
    (lambda d: d["cpu_speed"].update(attention_flops=None), "'attention_flops' must be 0"),
    (lambda d: d["cpu_speed"].update(attention_flops=True), "'attention_flops' must be 0"),
    (lambda d: d["cpu_speed"].update(attention_flops=-1e11), "'attention_flops' must be 0"),
    (lambda d: d["cpu_speed"].update(prompt_layer_overhead_s=[1]), "'prompt_layer_overhead_s' must be a non-neg"),
    (lambda d: d["cpu_speed"].update(prompt_layer_overhead_s=-1e-3), "'prompt_layer_overhead_s' must be a non-neg"),
    (lambda d: d["cpu_speed"].update(prompt_layer_overhead_s=float("nan")), "'prompt_layer_overhead_s' must be"),
    (lambda d: d["cpu_speed"].update(token_overhead_s=1e308), "'token_overhead_s' must be a non-negative"),
    (lambda d: d["cpu_speed"].update(ram_bandwidth=10**400), "'ram_bandwidth' must be a positive number"),
    (lambda d: d["cpu_speed"]["type_flops"].update(Q4_K=10**400), "'type_flops' must map each type"),
    (lambda d: d["cpu_speed"]["type_bandwidth"].update(Q4_K=1e308), "'type_bandwidth' must map each type"),
    (lambda d: d["cpu_speed"]["type_bandwidth"].update(Q4_K=1e-300), "'type_bandwidth' must map each type"),
    (lambda d: d["gpus"][0].update(flops=1e300), "GPU 0: 'bandwidth' and 'flops' must be positive"),
    (lambda d: d.update(extra="x"), "'extra' must be a JSON object"),
    (lambda d: d.update(extra={"loopback_workers": 5}), "'extra' must be a JSON object"),
])
def test_hostile_profile_figures_are_one_line_errors(tmp_path: Path, edit: Any, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_edited("desktop-32gb-rtx3060", edit)))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_profile(str(bad))


def test_plan_with_a_zero_bandwidth_profile_is_one_line(tmp_path: Path) -> None:
    from tests.cli_helpers import localr1

    bad = tmp_path / "zero.json"
    bad.write_text(json.dumps(_edited("laptop-8gb", lambda d: d["cpu_speed"]["type_bandwidth"].update(
        {k: 0.0 for k in d["cpu_speed"]["type_bandwidth"]}))))
    result = localr1("plan", "r1-qwen-7b", "--hardware", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'type_bandwidth' must map each type to a positive number" in result.stderr


@pytest.mark.parametrize("figures", [
    {"type_bandwidth": {"Q8_0": 0.0}},
    {"ram_bandwidth": 10**400},  # too large for a float: an OverflowError, not a traceback
    {"attention_flops": "fast"},
    {"prompt_layer_overhead_s": float("nan")},
    {"prompt_layer_overhead_s": -1.0},
])
def test_a_cached_speed_with_impossible_figures_is_measured_again(tmp_path: Path, figures: dict[str, Any]) -> None:
    profile = probe(tmp_path, check_offload=False)
    save_speed(profile, CPUSpeed(**{**CPUSpeed({"Q8_0": 1e10}, {"Q8_0": 1e11}, 1e-4, 1e-5, 2e10, 2, "test").__dict__,
                                    **figures}))
    assert cached_speed(profile, 2) is None


def test_plan_json_speeds_are_finite_and_positive_or_a_one_line_error(tmp_path: Path) -> None:
    from tests.cli_helpers import localr1

    bad = tmp_path / "nan.json"
    bad.write_text(json.dumps(_edited("laptop-8gb", lambda d: d["cpu_speed"].update(prompt_layer_overhead_s=-1.0))))
    result = localr1("plan", "r1-qwen-7b", "--hardware", str(bad), "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stdout == ""
    assert "'prompt_layer_overhead_s' must be a non-negative number" in result.stderr
