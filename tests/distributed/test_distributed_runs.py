"""Training on 2 ranks for real (`heartgrid train ... --nproc 2`: torchrun, gloo on the CPU):
the same first update as one process with all the envs, one run directory written by rank 0
with the world's metrics, exact resume after a stop signal and after a kill, and a rank's death
ending the job with its name instead of a hang (docs/distributed.md)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from world_testing import (
    RECIPE, RUN_TIMEOUT, START_TIMEOUT, assert_two_equal_one, kill_all, latest, launch_command, overrides,
    rank_pid, records, run, start, wait_for, weights, without_timing,
)

from heartgrid.recipes import build_config
from heartgrid.rundir import CHECKPOINTS_DIR, CONFIG_FILE, LOG_FILE, METRICS_FILE
from heartgrid.rundir.lock import LOCK_FILE, RunLock
from heartgrid.trainer.run import RunDirectoryError, train

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

# Besides the defaults: prioritized sampling (the world's priorities, segments drawn more than
# once), micro-batches (a rank may hold none of one; the minibatch's normalisation statistics
# are the world's) and refreshed values.
SWITCHES = ["trainer.minibatch_sampling=prioritized", "trainer.prioritized.alpha=1.0",
            "trainer.value_target=refreshed"]


# Adam's step is g/(sqrt(v) + eps), ±learning_rate for any gradient, so with the recipes' eps of
# 1e-12 an element whose gradient is 0 up to rounding (1e-10) moves by up to the learning rate
# either way, by the rounding of sums that differ in order. A larger eps keeps such elements
# still, and the comparison about the update's arithmetic.
ADAM = "trainer.optimizer.eps=1e-6"


# Single steps for minibatches, and the reference's micro-batches that each normalise with
# their own (world's) statistics: ranks run different numbers of passes per minibatch.
STEPS = ["trainer.advantages=gae", "trainer.minibatch_sampling=transitions", "trainer.grad_accumulation=legacy"]


@pytest.mark.parametrize("extra, micro", [([ADAM], None), ([ADAM, *SWITCHES], 32), ([ADAM, *STEPS], 32)],
                         ids=["defaults", "switches", "steps"])
def test_two_ranks_with_half_the_envs_make_the_update_of_one_process_with_all(tmp_path, extra, micro):
    one = build_config("small_cardinal", overrides(tmp_path, "one", 1, 2, "logging.console=none", *extra, micro=micro))
    train(one)
    assert not dist.is_initialized()  # one process: no process group
    two = run(launch_command(tmp_path, "two", 2, *extra, micro=micro))
    assert two.returncode == 0, two.stderr

    run_dir = tmp_path / "two"
    mine = assert_two_equal_one(tmp_path, *extra, micro=micro)
    assert "overview/reward" in mine[0]  # episodes ended in the first epoch (so it was compared)

    # Only rank 0 wrote, and config.json says how the world was made.
    assert {p.name for p in run_dir.iterdir()} <= {CONFIG_FILE, METRICS_FILE, LOG_FILE, CHECKPOINTS_DIR, LOCK_FILE}
    saved = json.loads((run_dir / CONFIG_FILE).read_text())
    assert saved["distributed"]["world_size"] == 2 and saved["distributed"]["sizes"] == "per_rank"
    assert saved["trainer"]["num_envs"] == 4
    assert (run_dir / LOG_FILE).read_text().count("starting: run 'two'") == 1


def test_a_stopped_and_a_killed_two_rank_run_resume_exactly(tmp_path):
    epochs = 8
    reference = run(launch_command(tmp_path, "reference", epochs))
    assert reference.returncode == 0, reference.stderr

    # SIGTERM to the launcher once epoch 2 is logged: both ranks stop after the same epoch,
    # rank 0 saves, and the command ends with 3.
    command = launch_command(tmp_path, "interrupted", epochs)
    run_dir = tmp_path / "interrupted"
    process = start(command)
    wait_for(lambda: len(records(run_dir)) >= 2, START_TIMEOUT, "epoch 2", process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=RUN_TIMEOUT)
    assert process.returncode == 3, err
    assert "stopped by SIGTERM" in err and "checkpoint of epoch" in err
    stopped_at = int(latest(run_dir).name.split("_")[1])
    assert 2 <= stopped_at < epochs

    # Resuming on one rank is refused: each rank's state is in the checkpoint.
    with pytest.raises(RunDirectoryError, match=r"trained on 2"):
        train(build_config("small_cardinal", overrides(tmp_path, "interrupted", 2, epochs)))

    # The same command resumes; then every process is killed at once after a later checkpoint.
    process = start(command)
    wait_for(lambda: int(latest(run_dir).name.split("_")[1]) >= stopped_at + 2, START_TIMEOUT,
             "two more checkpoints", process)
    kill_all(process)
    killed_at = int(latest(run_dir).name.split("_")[1])
    if killed_at == epochs:
        pytest.skip("the run finished before it could be killed")  # pragma: no cover

    finished = run(command)
    assert finished.returncode == 0, finished.stderr
    final, expected = latest(run_dir), latest(tmp_path / "reference")
    assert final.name == expected.name == f"epoch_{epochs:06d}"
    a, b = weights(final), weights(expected)
    assert all(torch.equal(a[name], b[name]) for name in a)  # bit for bit
    state = torch.load(final / "trainer_state.pt", weights_only=True)
    reference_state = torch.load(expected / "trainer_state.pt", weights_only=True)
    for rank in range(2):  # every rank's engine, recurrent state and generators
        got, want = state["world"]["ranks"][rank], reference_state["world"]["ranks"][rank]
        assert json.dumps(str(got["engine"])) == json.dumps(str(want["engine"]))
        for s, t in zip(got["recurrent_state"], want["recurrent_state"], strict=True):
            assert torch.equal(s, t)
        assert torch.equal(got["rng"]["actions"], want["rng"]["actions"])
    assert [without_timing(r) for r in records(run_dir)] == [without_timing(r) for r in records(tmp_path / "reference")]


def test_when_a_rank_dies_the_job_ends_naming_it(tmp_path):
    process = start(launch_command(tmp_path, "dies", 400))
    run_dir = tmp_path / "dies"
    wait_for(lambda: len(records(run_dir)) >= 1, START_TIMEOUT, "the first epoch", process)
    pid = rank_pid(process.pid, 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    out, err = process.communicate(timeout=RUN_TIMEOUT)
    assert time.monotonic() - killed < 60  # no hang: torchrun stops rank 0, or gloo fails at once
    assert process.returncode == 1, err
    assert "rank 1 of 2 ended without an exit status" in err
    assert len(records(run_dir)) < 400
    assert not (run_dir / CHECKPOINTS_DIR).exists() or latest(run_dir).name < "epoch_000400"


def test_a_rank_that_cannot_start_ends_every_ranks_start_up(tmp_path):
    """Rank 0 finds the run directory in use: it says so once, and rank 1, already building
    its trainer, does not wait for it."""
    run_dir = tmp_path / "busy"
    run_dir.mkdir()
    lock = RunLock(run_dir, "another heartgrid train").acquire()
    try:
        started = time.monotonic()
        result = run(launch_command(tmp_path, "busy", 2))
    finally:
        lock.release()
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - started < 60
    assert result.stderr.count("another heartgrid train") == 1  # rank 0's line only
    assert "Traceback" not in result.stderr


def test_bench_train_reports_the_scaling_efficiency_of_n_ranks(tmp_path):
    command = [sys.executable, "-m", "heartgrid", "bench", "train", RECIPE, *overrides(tmp_path, "bench", 2, 1),
               "--device", "cpu", "--seconds", "0.5", "--nproc", "2", "--json"]
    result = run(command)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    one, two = report["one_rank"], report["ranks"]
    assert (one["ranks"], two["ranks"], report["nproc"]) == (1, 2, 2)
    assert one["num_envs"] == two["num_envs"] == 4  # the same per-rank config, weak scaling
    assert report["scaling_efficiency"] == pytest.approx(two["agent_steps_per_s"] / (2 * one["agent_steps_per_s"]))
    assert f"efficiency {report['scaling_efficiency']:.2f}" in result.stdout
