"""PhaseTimer: per-phase time of a window; on a GPU from CUDA events, without waiting for the
device at phase boundaries."""

from __future__ import annotations

import time

import pytest
import torch

from heartgrid.trainer.timing import PhaseTimer


def test_cpu_phases_and_the_rest_of_the_window():
    timer = PhaseTimer(torch.device("cpu"))
    with timer.phase("env"):
        time.sleep(0.03)
    with timer.phase("update"):
        time.sleep(0.01)
    with timer.phase("env"):
        time.sleep(0.03)
    time.sleep(0.02)  # in no phase: "other"
    wall = timer.close_window()
    metrics = timer.window_metrics(epochs=2)

    assert 0.09 <= wall < 0.5
    assert 30.0 <= metrics["timing/ms/env"] < 0.5 * 1000 / 2  # 60 ms over 2 epochs
    assert 5.0 <= metrics["timing/ms/update"] < metrics["timing/ms/env"]
    assert metrics["timing/ms/other"] >= 10.0
    assert metrics["timing/ms/forward"] == metrics["timing/ms/stats"] == 0.0
    assert sum(v for k, v in metrics.items() if k.startswith("timing/frac/")) == pytest.approx(1.0)
    assert timer.total_seconds == wall

    timer.close_window()  # the next window starts empty
    assert timer.window_metrics(epochs=1)["timing/ms/env"] == 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_phase_is_timed_by_events_without_waiting_for_the_kernel():
    timer = PhaseTimer(torch.device("cuda"))
    host_start = time.perf_counter()
    with timer.phase("update"):
        torch.cuda._sleep(200_000_000)  # a kernel that spins ~0.1 s on the GPU
    host_seconds = time.perf_counter() - host_start
    wall = timer.close_window()
    gpu_seconds = timer.window_metrics(epochs=1)["timing/ms/update"] / 1000.0

    assert gpu_seconds > 0.02
    assert host_seconds < gpu_seconds / 4  # the phase's end did not wait for the kernel
    assert gpu_seconds <= wall
