"""The llama.cpp build: switches derived from real /proc/cpuinfo files, and the installed build runs here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from localr1.llama_build import (
    LLAMA_CPP_PYTHON_VERSION,
    cpu_flags,
    derive_cmake_args,
    machine_cmake_args,
    wheel_cache_dir,
)

CPUINFO = Path(__file__).parent / "fixtures" / "cpuinfo"
X86 = ["AVX", "AVX2", "FMA", "F16C", "BMI2", "AVX_VNNI", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"]
AMX = ["AMX_TILE", "AMX_INT8", "AMX_BF16"]
BASE = {"LLAVA_BUILD": "OFF", "GGML_RPC": "ON"}


def switches(args: list[str]) -> dict[str, str]:
    return dict(a.removeprefix("-D").split("=", 1) for a in args if a.startswith("-D"))


def x86(on: set[str]) -> dict[str, str]:
    """Every switch of an x86 build: those in `on` ON, all others OFF."""
    return {**BASE, "GGML_NATIVE": "OFF", **{f"GGML_{s}": "ON" if s in on else "OFF" for s in X86 + AMX}}


class Probe:
    """Stands in for the AMX test program, and counts how often it was run."""

    def __init__(self, result: bool) -> None:
        self.result, self.calls = result, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.result


@pytest.fixture(autouse=True)
def no_user_cmake_args(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CMAKE_ARGS", raising=False)


@pytest.mark.parametrize(("cpu", "amx_runs", "on", "probed"), [
    ("xeon_sapphire_rapids.txt", False, set(X86), 1),  # AMX listed, the test program faults: off
    ("xeon_sapphire_rapids.txt", True, set(X86 + AMX), 1),  # AMX listed and proven: on
    ("amd_epyc_zen3.txt", True, {"AVX", "AVX2", "FMA", "F16C", "BMI2"}, 0),  # no AMX listed: never probed
    ("core_i5_sandy_bridge.txt", True, {"AVX"}, 0),  # AVX only: no AVX2, FMA, F16C or BMI2
])
def test_every_switch_follows_the_cpuinfo_file(cpu: str, amx_runs: bool, on: set[str], probed: int) -> None:
    probe = Probe(amx_runs)
    args = machine_cmake_args(CPUINFO / cpu, system="Linux", machine="x86_64", amx_probe=probe)
    assert switches(args) == x86(on)
    assert probe.calls == probed


def test_arm_linux_gets_no_x86_switches() -> None:
    args = machine_cmake_args(CPUINFO / "graviton2_arm64.txt", system="Linux", machine="aarch64",
                              amx_probe=Probe(True))
    assert switches(args) == BASE


def test_macos_uses_metal_and_no_x86_switches() -> None:
    args = machine_cmake_args(CPUINFO / "graviton2_arm64.txt", system="Darwin", machine="arm64")
    assert switches(args) == {**BASE, "GGML_METAL": "ON"}


def test_no_cpuinfo_means_no_cpu_switches(tmp_path: Path) -> None:
    args = machine_cmake_args(tmp_path / "missing", system="Linux", machine="x86_64", amx_probe=Probe(True))
    assert switches(args) == BASE


def test_user_cmake_args_come_last_and_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CUDA=on -DGGML_AVX2=ON")
    args = machine_cmake_args(CPUINFO / "core_i5_sandy_bridge.txt", system="Linux", machine="x86_64")
    assert args[-2:] == ["-DGGML_CUDA=on", "-DGGML_AVX2=ON"]
    assert switches(args) == {**x86({"AVX", "AVX2"}), "GGML_CUDA": "on"}  # later -D wins in CMake, as here


def test_flags_come_from_the_first_flags_line() -> None:
    text = (CPUINFO / "xeon_sapphire_rapids.txt").read_text()
    assert {"avx2", "amx_tile", "avx512_bf16"} <= cpu_flags(text)
    assert cpu_flags("no flags here") == set()
    assert derive_cmake_args("Linux", "x86_64", set(), True) == ["-DLLAVA_BUILD=OFF", "-DGGML_RPC=ON"]


def test_each_flag_set_gets_its_own_cached_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a = wheel_cache_dir("0.3.36", ["-DGGML_AVX2=ON"], "cp311")
    b = wheel_cache_dir("0.3.36", ["-DGGML_AVX2=OFF"], "cp311")
    assert a != b and a.parent == b.parent == tmp_path / "localr1" / "wheels"
    assert a == wheel_cache_dir("0.3.36", ["-DGGML_AVX2=ON"], "cp311")


def test_the_installed_build_is_the_one_derived_for_this_cpu() -> None:
    """setup.sh records which cached wheel it installed; llama.cpp reports the features compiled in."""
    args = machine_cmake_args()
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    marker = Path(sys.prefix) / "localr1-llama-build.txt"
    assert marker.read_text().strip() == wheel_cache_dir(LLAMA_CPP_PYTHON_VERSION, args, tag).name
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    compiled = {name for name in X86 + AMX if f" {name} = 1 " in f" {info.replace('|', ' ')} "}
    wanted = {name for name, value in switches(args).items() if value == "ON"}
    assert compiled == {name for name in [*X86, "AMX_INT8"] if f"GGML_{name}" in wanted}, info


@pytest.mark.model
def test_the_installed_build_runs_a_matrix_multiply_on_this_cpu(demo_path: Path) -> None:
    """A build with an instruction this CPU lacks dies with SIGILL on the first matrix multiply."""
    code = ("import sys, llama_cpp\n"
            "m = llama_cpp.Llama(sys.argv[1], n_ctx=64, n_threads=2, verbose=False)\n"
            "m.eval(m.tokenize(b'The quick brown fox jumps over the lazy dog'))\n"
            "print('logits', len(m.scores[m.n_tokens - 1]))\n")
    result = subprocess.run([sys.executable, "-c", code, str(demo_path)], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout.split() == ["logits", "49152"]
