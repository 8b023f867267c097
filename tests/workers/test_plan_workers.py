"""The planner with workers: their memory counts as devices, the network slows each token, and the plan's
load parameters name the workers and each one's layers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from localr1.hardware import load_profile
from localr1.plan import NoFitError, Wishes, make_plan
from localr1.planner.candidates import model_candidates
from localr1.planner.remote import RemoteDevice, with_workers
from localr1.planner.speed import predict_speed

GiB = 2**30


def test_a_model_too_big_for_the_laptop_fits_with_two_workers() -> None:
    c = model_candidates("r1-qwen-14b")
    laptop = load_profile("laptop-8gb")
    with pytest.raises(NoFitError):  # the 8 GB laptop alone cannot hold the 14B
        make_plan(c.name, c.shape, c.variants, laptop, Wishes(quant="Q4_K_M"))
    workers = (RemoteDevice("10.0.0.2:50052", 6 * GiB, 8 * GiB), RemoteDevice("10.0.0.3:50052", 6 * GiB, 8 * GiB))
    plan = make_plan(c.name, c.shape, c.variants, with_workers(laptop, workers), Wishes(quant="Q4_K_M"))
    assert plan.config.context >= 8192
    assert plan.workers == ("10.0.0.2:50052", "10.0.0.3:50052")
    load = plan.load_params()
    assert load.workers == plan.workers and len(load.tensor_split) == 2
    assert sum(load.tensor_split) == load.gpu_layers > 0
    for device, budget in zip(plan.config.memory.gpus, plan.budget.gpus, strict=True):
        assert 0 < device.total <= budget <= 6 * GiB


def test_the_network_is_paid_per_worker_on_each_token() -> None:
    c = model_candidates("r1-qwen-7b")
    v = next(v for v in c.variants if v.file_type == "Q4_K_M")
    base = load_profile("laptop-16gb")
    far = with_workers(base, (RemoteDevice("10.0.0.2:1", 8 * GiB, 8 * GiB),))
    near = with_workers(base, (RemoteDevice("127.0.0.1:1", 8 * GiB, 8 * GiB, loopback=True),))
    assert base.cpu_speed is not None or load_profile("laptop-16gb").cpu_speed is not None
    local = predict_speed(c.shape, v.weights, base, context=8192)
    split = (14,)
    lan = predict_speed(c.shape, v.weights, far, context=8192, gpu_layers=split)
    loop = predict_speed(c.shape, v.weights, near, context=8192, gpu_layers=split)
    assert lan.decode_tps < loop.decode_tps < local.decode_tps * 1.0001
    # two workers holding layers cost two exchanges: slower than one worker holding the same layers
    two = with_workers(base, (RemoteDevice("10.0.0.2:1", 8 * GiB, 8 * GiB), RemoteDevice("10.0.0.3:1", 8 * GiB,
                                                                                            8 * GiB)))
    assert predict_speed(c.shape, v.weights, two, context=8192, gpu_layers=(7, 7)).decode_tps < lan.decode_tps


def test_local_gpus_keep_their_speed_model() -> None:
    c = model_candidates("r1-qwen-7b")
    v = next(v for v in c.variants if v.file_type == "Q4_K_M")
    gpu_box = load_profile("desktop-32gb-rtx3060")
    with_worker = with_workers(gpu_box, (RemoteDevice("10.0.0.2:1", 8 * GiB, 8 * GiB),))
    on_gpu = predict_speed(c.shape, v.weights, gpu_box, context=8192, gpu_layers=(29,))
    same = predict_speed(c.shape, v.weights, with_worker, context=8192, gpu_layers=(0, 29))
    assert abs(on_gpu.decode_tps - same.decode_tps) < 1e-6 * on_gpu.decode_tps
    assert replace(gpu_box).gpus == gpu_box.gpus
