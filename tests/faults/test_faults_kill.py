"""kill -9 at any moment loses at most the work since the last checkpoint: rerunning the same
command until it exits 0 ends with exactly the weights, optimizer, generator and engine state
and metric records of a run that was never interrupted. A run killed before its first
checkpoint starts again from scratch with its earlier logs set aside in restarts/."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from fault_testing import (
    SUB_EPOCHS, Train, assert_same_final_state, assert_same_metrics, checkpoint_epochs, checkpoint_leftovers,
    count_starts, leftover_stamps, leftovers, log_text, logged_epochs, run_train, stop_after, tiny_config,
    train_command, wait_for,
)

from heartgrid.checkpoint import CheckpointManager
from heartgrid.errors import FileFault
from heartgrid.rundir import CHECKPOINTS_DIR, METRICS_FILE, RESTARTS_DIR
from heartgrid.trainer.run import train_run

# When each kill lands (shuffled by a seeded generator, so a failure can be replayed):
#   startup   a random time after the process starts: imports, the lock, the run directory's
#             repairs, config.json, the restart of a run without checkpoints
#   training  a random time into training: rollouts, updates, metric lines, checkpoints
#   write     the moment a checkpoint's hidden .tmp- directory appears: inside the write
MOMENTS = ["startup"] * 3 + ["training"] * 4 + ["write"] * 5
SEED = 21


def kill_at(moment: str, process: Train, run_dir: Path, rng: random.Random, starts_before: int) -> bool:
    """Wait for `moment` and SIGKILL the process; False when it finished first."""
    if moment == "startup":
        deadline = process.started + rng.uniform(0.3, 3.0)
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
    else:
        wait_for(lambda: count_starts(run_dir) > starts_before or process.poll() is not None,
                 "training to begin", process=None)
        if moment == "training":
            time.sleep(rng.uniform(0.0, 0.6))
        else:
            time.sleep(rng.uniform(0.0, 0.3))
            # A leftover of an earlier kill is removed when the next write begins; only a .tmp-
            # directory that appears after that is this write's.
            stale = set(checkpoint_leftovers(run_dir))
            deadline = time.monotonic() + 5.0
            while stale and stale & set(checkpoint_leftovers(run_dir)) and time.monotonic() < deadline:
                time.sleep(0.0002)
            while (not any(name.startswith(".tmp-epoch_") for name in checkpoint_leftovers(run_dir))
                   and time.monotonic() < deadline and process.poll() is None):
                time.sleep(0.0002)
    if process.poll() is not None:
        return False
    process.kill()
    return True


@pytest.mark.slow
def test_kill_9_at_random_moments_then_the_same_command_ends_exactly_like_an_uninterrupted_run(
    reference: Path, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    moments = rng.sample(MOMENTS, len(MOMENTS))
    command = train_command(tmp_path, "killed")
    run_dir = tmp_path / "killed"
    kills = []  # (moment, latest checkpoint after the kill, what this kill left half-written)
    for attempt, moment in enumerate(moments):
        starts_before, stamps_before = count_starts(run_dir), leftover_stamps(run_dir)
        process = Train(command, tmp_path / "logs", f"attempt{attempt}")
        if not kill_at(moment, process, run_dir, rng, starts_before):
            break  # finished before its kill: the machine is fast; fewer kills
        half_written = sorted(name for name, *_ in leftover_stamps(run_dir) - stamps_before)
        # What the next attempt resumes from is a whole checkpoint, whatever the kill cut short.
        latest = CheckpointManager(run_dir).load_latest() if checkpoint_epochs(run_dir) else None
        assert latest is None or latest.refused == [], [str(e) for e in latest.refused]
        kills.append((moment, latest.epoch if latest else 0, half_written))

    code, _, stderr = run_train(command, tmp_path / "logs", "final")
    assert code == 0, stderr

    in_checkpoint_writes = [k for k in kills if any(CHECKPOINTS_DIR in p for p in k[2])]
    in_other_writes = [k for k in kills if k[2] and k not in in_checkpoint_writes]
    print(f"\n{len(kills)} kills, {len(in_checkpoint_writes)} inside checkpoint writes, "
          f"{len(in_other_writes)} inside other writes; checkpoint epoch after each: "
          f"{[k[1] for k in kills]}; moments: {[k[0] for k in kills]}; left: {[k[2] for k in kills]}")
    assert len(kills) >= 8, kills
    # Most targeted kills land inside the write (it takes a few ms); one is enough to matter.
    assert in_checkpoint_writes, kills
    # Every kill after training began was followed by a resume (or a restart) that trained on.
    assert count_starts(run_dir) >= len([k for k in kills if k[0] != "startup"]) + 1
    assert leftovers(run_dir) == []  # the last run cleared what the kills left
    assert_same_final_state(run_dir, reference, SUB_EPOCHS)
    assert_same_metrics(run_dir, reference, SUB_EPOCHS)


def test_a_run_killed_before_its_first_checkpoint_starts_again_from_scratch_with_the_same_config(
    reference: Path, tmp_path: Path
) -> None:
    command = train_command(tmp_path, "early", "trainer.checkpoint_interval=1000")
    run_dir = tmp_path / "early"
    process = Train(command, tmp_path / "logs", "killed")
    wait_for(lambda: len(logged_epochs(run_dir)) >= 2, "two metric records", process=process)
    process.kill()
    assert checkpoint_epochs(run_dir) == []
    earlier_metrics = (run_dir / METRICS_FILE).read_bytes()

    # Another config is still refused, by name, and nothing is moved.
    code, _, stderr = run_train(train_command(tmp_path, "early", "trainer.checkpoint_interval=1000",
                                              "trainer.gamma=0.9"), tmp_path / "logs", "changed")
    assert code == 2
    assert "cannot restart" in stderr and "trainer.gamma: 0.977 -> 0.9" in stderr, stderr
    assert "Traceback" not in stderr
    assert not (run_dir / RESTARTS_DIR).exists() and (run_dir / METRICS_FILE).read_bytes() == earlier_metrics

    code, _, stderr = run_train(command, tmp_path / "logs", "again")
    assert code == 0, stderr
    [aside] = (run_dir / RESTARTS_DIR).iterdir()
    assert (aside / METRICS_FILE).read_bytes() == earlier_metrics
    assert ("restarting from scratch: the earlier attempt stopped before its first checkpoint; "
            f"what it logged is in {aside}") in log_text(run_dir)
    assert checkpoint_epochs(run_dir) == [SUB_EPOCHS]  # only the end's, as the config asks
    assert_same_metrics(run_dir, reference, SUB_EPOCHS)  # epochs 1..N once, none of the first attempt's
    assert_same_final_state(run_dir, reference, SUB_EPOCHS)



def test_two_restarts_within_one_second_keep_both_attempts_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process retries (a sweep, a script calling train() again) can restart that fast; the
    clock is pinned here so that the second restart falls in the same second for certain."""
    strftime = time.strftime
    monkeypatch.setattr(time, "strftime", lambda fmt, *args: "20260101-000000" if fmt == "%Y%m%d-%H%M%S"
                        else strftime(fmt, *args))
    config = tiny_config(tmp_path, "twice", **{"logging.tensorboard": True, "trainer.checkpoint_interval": 1000})
    for attempt in range(2):  # each dies in epoch 2, before any checkpoint
        with monkeypatch.context() as patch:
            stop_after(patch, 1, "abort")
            with pytest.raises(KeyboardInterrupt):
                train_run(config)
    train_run(config)
    attempts = sorted((config.run_dir / RESTARTS_DIR).iterdir())
    assert len(attempts) == 2 and all((a / METRICS_FILE).exists() for a in attempts)
