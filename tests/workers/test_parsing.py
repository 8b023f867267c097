"""Worker addresses, the default layer split, and the planner's view of workers (no llama.cpp)."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from localr1.errors import ConfigError
from localr1.hardware import GPU, CPUSpeed, HardwareProfile
from localr1.planner.remote import (
    LOOPBACK_EXCHANGE_S,
    RemoteDevice,
    default_split,
    exchange_seconds,
    proportional_split,
    with_workers,
)
from localr1.workers import Endpoint, is_loopback, parse_endpoint, parse_workers
from tests.cli_helpers import localr1

GiB = 2**30


def test_endpoints_parse_and_print_back() -> None:
    assert parse_endpoint(" 192.168.1.20:50052 ") == Endpoint("192.168.1.20", 50052)
    assert parse_workers("a:1, b:2") == (Endpoint("a", 1), Endpoint("b", 2))
    assert parse_workers("") == parse_workers("  ") == ()


@pytest.mark.parametrize(("text", "says"), [
    ("host", "host:port"), (":50052", "no host"), ("h:0", "valid port"), ("h:70000", "valid port"),
    ("h:port", "valid port"), ("a:b:1", "IPv6"), ("[::1]:7000", "IPv6"), ("[::ffff:127.0.0.1]:50091", "IPv6"),
])
def test_bad_endpoints_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_endpoint(text)


@pytest.mark.parametrize("text", [",", "a:1,,b:2", "a:1,"])
def test_an_empty_entry_in_the_worker_list_is_an_error(text: str) -> None:
    with pytest.raises(ConfigError, match="empty entry"):
        parse_workers(text)


def test_a_worker_listed_twice_is_an_error() -> None:
    with pytest.raises(ConfigError, match="listed twice"):
        parse_workers("h:1,h:1")


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("box")


def test_default_split_follows_free_memory() -> None:
    assert proportional_split(29, [1, 1, 1]) == [10, 10, 9]
    # 28 layers + the output head; this machine has twice the memory of each worker
    off, split = default_split(28, 8 * GiB, [4 * GiB, 4 * GiB])
    assert split == (7.0, 7.0) and off == 14
    assert default_split(28, 8 * GiB, [0]) == (0, (0.0,))


def test_bad_workers_option_is_a_one_line_usage_error() -> None:
    done = localr1("run", "--workers", "nohost", "hi")
    assert done.returncode == 2
    assert "host:port" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def _cpu_only() -> HardwareProfile:
    speed = CPUSpeed(type_bandwidth={"Q4_K": 20e9, "Q6_K": 20e9, "F32": 20e9}, type_flops={"Q4_K": 2e11},
                     token_overhead_s=1e-3, layer_overhead_s=1e-5, ram_bandwidth=20e9, threads=2, source="test")
    return HardwareProfile(name="test", os="Linux", cpu_model="cpu", physical_cores=2, logical_cpus=2,
                           ram_total=8 * GiB, ram_available=6 * GiB, cpu_speed=speed,
                           gpus=(GPU("dGPU", "nvidia", 8 * GiB, 8 * GiB, 3e11, 1e13),), gpu_offload=False)


def test_workers_become_devices_in_front_of_usable_gpus_only() -> None:
    hw = with_workers(_cpu_only(), (RemoteDevice("10.0.0.2:50052", 12 * GiB, 16 * GiB),))
    assert [g.name for g in hw.gpus] == ["10.0.0.2:50052"] and hw.gpu_offload  # the unusable GPU is left out
    with_gpu = with_workers(replace(_cpu_only(), gpu_offload=True), (RemoteDevice("w:1", GiB, GiB),))
    assert [g.name for g in with_gpu.gpus] == ["w:1", "dGPU"]


def test_a_lan_exchange_costs_more_than_loopback() -> None:
    assert exchange_seconds(3584, loopback=True) == LOOPBACK_EXCHANGE_S
    assert exchange_seconds(3584, loopback=False) > LOOPBACK_EXCHANGE_S
    assert exchange_seconds(3584, loopback=False, tokens=512) > exchange_seconds(3584, loopback=False)


def test_a_worker_on_a_port_in_use_is_a_one_line_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = localr1("worker", "--port", str(port))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"localr1: error: cannot listen on 127.0.0.1:{port} (Address already in use): choose another --port, "
        "or an address of this machine for --host"]
