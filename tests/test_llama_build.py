"""CPU flag derivation for the llama.cpp build: never AMX unless proven, the user's CMAKE_ARGS win."""

from __future__ import annotations

from pathlib import Path

import pytest

from localr1.llama_build import cpu_flags, derive_cmake_args, wheel_cache_dir

SAPPHIRE_RAPIDS = "processor : 0\nflags : fpu sse2 avx avx2 fma f16c bmi2 avx512f avx512_vnni avx512_bf16 " \
    "avx512vbmi amx_tile amx_int8 amx_bf16 avx_vnni\n"
OLD_LAPTOP = "processor : 0\nflags : fpu sse2 avx\n"


def switches(args: list[str]) -> dict[str, str]:
    return dict(a.removeprefix("-D").split("=", 1) for a in args if a.startswith("-D"))


def test_flags_come_from_cpuinfo() -> None:
    assert {"avx2", "amx_tile"} <= cpu_flags(SAPPHIRE_RAPIDS)
    assert cpu_flags("no flags here") == set()


def test_amx_listed_but_not_proven_stays_off() -> None:
    s = switches(derive_cmake_args("Linux", "x86_64", cpu_flags(SAPPHIRE_RAPIDS), amx_ok=False))
    assert s["GGML_NATIVE"] == "OFF"
    assert s["GGML_AVX512"] == s["GGML_AVX512_VNNI"] == s["GGML_AVX_VNNI"] == "ON"
    assert s["GGML_AMX_TILE"] == s["GGML_AMX_INT8"] == s["GGML_AMX_BF16"] == "OFF"


def test_amx_on_only_when_proven() -> None:
    s = switches(derive_cmake_args("Linux", "x86_64", cpu_flags(SAPPHIRE_RAPIDS), amx_ok=True))
    assert s["GGML_AMX_TILE"] == "ON"


def test_missing_features_are_switched_off() -> None:
    s = switches(derive_cmake_args("Linux", "x86_64", cpu_flags(OLD_LAPTOP), amx_ok=False))
    assert s["GGML_AVX"] == "ON" and s["GGML_AVX2"] == "OFF" and s["GGML_FMA"] == "OFF"


def test_user_cmake_args_come_last_and_win() -> None:
    args = derive_cmake_args("Linux", "x86_64", cpu_flags(OLD_LAPTOP), False, "-DGGML_CUDA=on -DGGML_AVX2=ON")
    assert args[-2:] == ["-DGGML_CUDA=on", "-DGGML_AVX2=ON"]
    assert switches(args)["GGML_AVX2"] == "ON"  # later -D wins in CMake, as in this dict


def test_macos_uses_metal_and_no_x86_switches() -> None:
    s = switches(derive_cmake_args("Darwin", "arm64", set(), False))
    assert s["GGML_METAL"] == "ON" and "GGML_AVX" not in s


def test_each_flag_set_gets_its_own_cached_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a = wheel_cache_dir("0.3.36", ["-DGGML_AVX2=ON"], "cp311")
    b = wheel_cache_dir("0.3.36", ["-DGGML_AVX2=OFF"], "cp311")
    assert a != b and a.parent == b.parent == tmp_path / "localr1" / "wheels"
    assert a == wheel_cache_dir("0.3.36", ["-DGGML_AVX2=ON"], "cp311")


def test_installed_build_never_enables_amx_here() -> None:
    from localr1.llama_build import machine_cmake_args

    s = switches(machine_cmake_args())
    if "GGML_AMX_TILE" in s:
        from localr1.llama_build import amx_usable

        assert s["GGML_AMX_TILE"] == ("ON" if amx_usable() else "OFF")
