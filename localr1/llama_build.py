"""Build and cache a llama-cpp-python wheel with CPU flags derived from this machine.

Standard library only: setup runs it before anything else is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"

# /proc/cpuinfo flag -> ggml CMake switch. Order matters only for readability.
_X86_FLAG_SWITCHES: tuple[tuple[str, str], ...] = (
    ("avx", "GGML_AVX"),
    ("avx2", "GGML_AVX2"),
    ("fma", "GGML_FMA"),
    ("f16c", "GGML_F16C"),
    ("bmi2", "GGML_BMI2"),
    ("avx_vnni", "GGML_AVX_VNNI"),
    ("avx512f", "GGML_AVX512"),
    ("avx512vbmi", "GGML_AVX512_VBMI"),
    ("avx512_vnni", "GGML_AVX512_VNNI"),
    ("avx512_bf16", "GGML_AVX512_BF16"),
)
_AMX_SWITCHES: tuple[tuple[str, str], ...] = (
    ("amx_tile", "GGML_AMX_TILE"),
    ("amx_int8", "GGML_AMX_INT8"),
    ("amx_bf16", "GGML_AMX_BF16"),
)
# Always on: no llava/mtmd (not needed, +3 min build), RPC backend for later layer offload.
_BASE_ARGS: tuple[str, ...] = ("-DLLAVA_BUILD=OFF", "-DGGML_RPC=ON")

_AMX_PROBE_C = r"""
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <immintrin.h>
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
struct cfg { uint8_t palette, start; uint8_t pad[14]; uint16_t colsb[16]; uint8_t rows[16]; };
int main(void) {
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)) return 2;
    struct cfg c; memset(&c, 0, sizeof c);
    c.palette = 1; c.rows[0] = 16; c.colsb[0] = 64;
    _tile_loadconfig(&c);
    _tile_zero(0);
    _tile_release();
    return 0;
}
"""


def cpu_flags(cpuinfo_text: str) -> set[str]:
    """Return the feature flags listed on the first `flags` line of /proc/cpuinfo text."""
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def amx_usable() -> bool:
    """Compile and run a tiny AMX program: True only if it executes without faulting."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp, "amx.c"), Path(tmp, "amx")
        src.write_text(_AMX_PROBE_C)
        built = subprocess.run(
            [compiler, "-O1", "-mamx-tile", str(src), "-o", str(exe)], capture_output=True, check=False
        )
        if built.returncode != 0:
            return False
        try:
            return subprocess.run([str(exe)], capture_output=True, timeout=10, check=False).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False


def derive_cmake_args(
    system: str, machine: str, flags: set[str], amx_ok: bool, user_args: str = ""
) -> list[str]:
    """CMake arguments for this CPU; the user's own CMAKE_ARGS come last so they win."""
    args = list(_BASE_ARGS)
    if system == "Darwin":
        args.append("-DGGML_METAL=ON")
    elif machine.lower() in ("x86_64", "amd64") and flags:
        # GGML_NATIVE would pass -march=native, which enables AMX where CPUID merely claims it.
        args.append("-DGGML_NATIVE=OFF")
        args += [f"-D{switch}={'ON' if flag in flags else 'OFF'}" for flag, switch in _X86_FLAG_SWITCHES]
        amx = amx_ok and all(flag in flags for flag, _ in _AMX_SWITCHES)
        args += [f"-D{switch}={'ON' if amx else 'OFF'}" for _, switch in _AMX_SWITCHES]
    return args + shlex.split(user_args)


def wheel_cache_dir(version: str, cmake_args: list[str], python_tag: str) -> Path:
    """Folder holding the wheel built for this version, flag set and Python."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "localr1" / "wheels"
    key = hashlib.sha256(" ".join([version, python_tag, *cmake_args]).encode()).hexdigest()[:16]
    return root / f"llama-cpp-python-{version}-{python_tag}-{key}"


def machine_cmake_args(cpuinfo: Path = Path("/proc/cpuinfo"), system: str | None = None, machine: str | None = None,
                       amx_probe: Callable[[], bool] = amx_usable) -> list[str]:
    """Derive the CMake arguments for the machine this runs on (tests point it at other CPUs' cpuinfo)."""
    system, machine = system or platform.system(), machine or platform.machine()
    flags: set[str] = set()
    if system == "Linux" and cpuinfo.exists():
        flags = cpu_flags(cpuinfo.read_text(errors="replace"))
    amx_ok = "amx_tile" in flags and amx_probe()
    return derive_cmake_args(system, machine, flags, amx_ok, os.environ.get("CMAKE_ARGS", ""))


def _pip(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, env=env)


def _installed(version: str) -> bool:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("llama-cpp-python") == version
    except PackageNotFoundError:
        return False


def build_and_install(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    """Install llama-cpp-python from the cached wheel, building it first when absent."""
    cmake_args = machine_cmake_args()
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    cache = wheel_cache_dir(version, cmake_args, tag)
    marker = Path(sys.prefix) / "localr1-llama-build.txt"
    if marker.exists() and marker.read_text().strip() == cache.name and _installed(version):
        print(f"localr1: llama-cpp-python {version} already built for this CPU", flush=True)
        return cache
    wheels = sorted(cache.glob("llama_cpp_python-*.whl")) if cache.exists() else []
    if not wheels:
        print(f"localr1: building llama-cpp-python {version} (several minutes)", flush=True)
        print(f"localr1: CMAKE_ARGS={' '.join(cmake_args)}", flush=True)
        env = dict(os.environ, CMAKE_ARGS=" ".join(cmake_args), FORCE_CMAKE="1")
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        staging = Path(tempfile.mkdtemp(prefix="localr1-wheel-"))
        _pip("wheel", "--no-deps", "--no-binary", "llama-cpp-python", "-w", str(staging),
             f"llama-cpp-python=={version}", env=env)
        cache.parent.mkdir(parents=True, exist_ok=True)
        # Rename into place so an interrupted build never looks cached.
        if not cache.exists():
            staging.rename(cache)
        wheels = sorted(cache.glob("llama_cpp_python-*.whl"))
    else:
        print(f"localr1: reusing cached llama-cpp-python wheel in {cache}", flush=True)
    _pip("install", "--no-deps", "--force-reinstall", str(wheels[-1]))
    marker.write_text(cache.name + "\n")
    return cache


def main(argv: list[str] | None = None) -> int:
    """Print the derived CMake arguments, or build and install the wheel."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--print-args", action="store_true", help="only print the CMake arguments")
    ns = parser.parse_args(argv)
    if ns.print_args:
        print(" ".join(machine_cmake_args()))
        return 0
    build_and_install()
    return 0


if __name__ == "__main__":
    sys.exit(main())
