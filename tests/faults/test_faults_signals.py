"""A stop signal (a cluster's preemption warning: SIGTERM, SIGUSR1, ...) finishes the epoch,
writes a checkpoint and exits 3; the same command resumes to exactly the state of a run that
was never stopped. An epoch that would outlast `system.stop_grace_s` is cut instead, and the
state from its start is saved."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
from fault_testing import (
    EPOCH_STEPS, EPOCHS, SUB_EPOCHS, Train, assert_same_final_state, assert_same_metrics,
    checkpoint_epochs, log_text, logged_epochs, run_train, tiny_config, train_command, wait_for,
)

import heartgrid.trainer.trainer as trainer_module
from heartgrid.interrupts import EXIT_STOPPED
from heartgrid.rundir import RESTARTS_DIR
from heartgrid.trainer.run import train_run

# From the signal to the exit: one tiny epoch and a checkpoint, on a loaded machine. The whole
# run takes longer than this, so a stop that waited for the end would fail.
STOP_TIMEOUT = 30.0


def stop_with(signum: int, process: Train, run_dir: Path, after_records: int) -> tuple[int, str, float]:
    """Send `signum` once `after_records` records are logged: (exit status, stderr, seconds from
    the signal to the exit)."""
    wait_for(lambda: len(logged_epochs(run_dir)) >= after_records, f"{after_records} records", process=process)
    sent = time.monotonic()
    process.send(signum)
    code = process.finish(STOP_TIMEOUT)
    return code, process.stderr(), time.monotonic() - sent


def stopped_epoch(stderr: str, name: str) -> int:
    """The epoch `heartgrid train: stopped by NAME (checkpoint of epoch N saved)` names."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    match = re.fullmatch(rf"heartgrid train: stopped by {name} \(checkpoint of epoch (\d+) saved\); "
                         r"run the same command again to resume", lines[0])
    assert match, lines[0]
    return int(match.group(1))


def test_sigterm_saves_a_checkpoint_exits_3_and_the_same_command_resumes_exactly(
    reference: Path, tmp_path: Path
) -> None:
    command = train_command(tmp_path, "term")
    run_dir = tmp_path / "term"
    process = Train(command, tmp_path / "logs", "stopped")
    code, stderr, took = stop_with(signal.SIGTERM, process, run_dir, after_records=2)
    assert code == EXIT_STOPPED == 3
    assert took < STOP_TIMEOUT
    epoch = stopped_epoch(stderr, "SIGTERM")
    print(f"\nSIGTERM after epoch 2 was logged: exit 3 {took:.2f} s later, checkpoint of epoch {epoch}")
    assert 2 <= epoch < SUB_EPOCHS  # it stopped after the epoch in progress, not at the end
    assert checkpoint_epochs(run_dir)[-1] == epoch
    assert logged_epochs(run_dir) == list(range(1, epoch + 1))
    log = log_text(run_dir)
    assert "SIGTERM: stopping after this epoch (once more to abort without saving)" in log
    assert (f"SIGTERM: stopped at epoch {epoch}, agent step {epoch * EPOCH_STEPS}; checkpoint written; "
            "run the same command again to resume") in log

    code, _, stderr = run_train(command, tmp_path / "logs", "resumed")
    assert code == 0, stderr
    assert f"resuming at epoch {epoch}, agent step {epoch * EPOCH_STEPS}" in log_text(run_dir)
    assert_same_final_state(run_dir, reference, SUB_EPOCHS)
    assert_same_metrics(run_dir, reference, SUB_EPOCHS)


def test_sigusr1_before_the_first_periodic_checkpoint_still_saves_one_and_resume_is_exact(
    reference: Path, tmp_path: Path
) -> None:
    """The default stop signals include SIGUSR1 (Slurm's --signal). With no checkpoint due for
    1000 epochs, the stop itself writes the one the resume needs."""
    command = train_command(tmp_path, "usr1", "trainer.checkpoint_interval=1000")
    run_dir = tmp_path / "usr1"
    process = Train(command, tmp_path / "logs", "stopped")
    code, stderr, took = stop_with(signal.SIGUSR1, process, run_dir, after_records=1)
    assert code == EXIT_STOPPED
    epoch = stopped_epoch(stderr, "SIGUSR1")
    print(f"\nSIGUSR1 after epoch 1 was logged: exit 3 {took:.2f} s later, checkpoint of epoch {epoch}")
    assert checkpoint_epochs(run_dir) == [epoch]
    assert "SIGUSR1: stopped at epoch" in log_text(run_dir)

    code, _, stderr = run_train(command, tmp_path / "logs", "resumed")
    assert code == 0, stderr
    assert f"resuming at epoch {epoch}" in log_text(run_dir)
    assert not (run_dir / RESTARTS_DIR).exists()  # resumed, not restarted
    assert_same_final_state(run_dir, reference, SUB_EPOCHS)
    assert_same_metrics(run_dir, reference, SUB_EPOCHS)


def test_stop_signals_are_configurable(tmp_path: Path) -> None:
    """system.stop_signals adds SIGUSR2 (not a default) and leaves out SIGTERM."""
    command = train_command(tmp_path, "usr2", 'system.stop_signals=["SIGUSR2"]')
    run_dir = tmp_path / "usr2"
    process = Train(command, tmp_path / "logs", "usr2")
    code, stderr, _ = stop_with(signal.SIGUSR2, process, run_dir, after_records=1)
    assert code == EXIT_STOPPED
    assert checkpoint_epochs(run_dir)[-1] == stopped_epoch(stderr, "SIGUSR2")

    process = Train(command, tmp_path / "logs", "term")  # resumes, then SIGTERM ends it as usual
    code, stderr, _ = stop_with(signal.SIGTERM, process, run_dir, after_records=len(logged_epochs(run_dir)) + 1)
    assert code == -signal.SIGTERM, stderr


# ---- cutting an epoch that would outlast the grace time (in-process) -------------------------


def signal_during_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int, signum: int = signal.SIGTERM) -> None:
    """Raise a real `signum` in the middle of the rollout of `epoch` (counting from 1): the
    rollout samples actions once per step, bptt_horizon (16) steps per epoch here."""
    calls = []
    original = trainer_module.sample_actions

    def sample_actions(*args, **kwargs):
        calls.append(1)
        if len(calls) == (epoch - 1) * 16 + 5:
            signal.raise_signal(signum)  # through the trainer's own handler
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "sample_actions", sample_actions)


def test_a_stop_past_the_grace_time_cuts_the_epoch_saves_its_start_and_resume_is_exact(
    tiny_reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grace 0: any epoch counts as long once one has been timed, so the state at the start of
    epoch 2 is kept in memory, and the stop during epoch 2 saves it instead of waiting."""
    config = tiny_config(tmp_path, "cut", **{"system.stop_grace_s": 0})
    with monkeypatch.context() as patch:
        signal_during_epoch(patch, 2)
        outcome = train_run(config)
    assert (outcome.stopped_by, outcome.epoch, outcome.agent_step) == ("SIGTERM", 1, EPOCH_STEPS)
    run_dir = config.run_dir
    assert checkpoint_epochs(run_dir) == [1]  # not due (interval 2): the snapshot of epoch 2's start
    assert logged_epochs(run_dir) == [1]  # nothing of the cut epoch
    assert ("SIGTERM: epoch 2 was cut (it would not end within system.stop_grace_s=0); the checkpoint "
            "of epoch 1 is the latest; run the same command again to resume (it redoes epoch 2)") in log_text(run_dir)

    outcome = train_run(config)
    assert outcome.stopped_by is None
    assert "resuming at epoch 1, agent step 64" in log_text(run_dir)
    assert_same_final_state(run_dir, tiny_reference, EPOCHS)
    assert_same_metrics(run_dir, tiny_reference, EPOCHS)


def test_a_cut_first_epoch_leaves_no_checkpoint_and_the_same_command_starts_again(
    tiny_reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(tmp_path, "cut_first", **{"system.stop_grace_s": 0})
    with monkeypatch.context() as patch:
        signal_during_epoch(patch, 1)
        outcome = train_run(config)
    assert (outcome.stopped_by, outcome.epoch) == ("SIGTERM", 0)
    assert checkpoint_epochs(config.run_dir) == []
    assert "no checkpoint yet: the same command starts the run again from scratch" in log_text(config.run_dir)

    assert train_run(config).stopped_by is None
    assert "restarting from scratch" in log_text(config.run_dir)
    assert_same_final_state(config.run_dir, tiny_reference, EPOCHS)
    assert_same_metrics(config.run_dir, tiny_reference, EPOCHS)


def test_a_stop_within_the_grace_time_lets_the_epoch_finish(
    tiny_reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default grace (5 s) is far longer than a tiny epoch: the signal's epoch completes,
    is logged and checkpointed, and nothing is cut."""
    config = tiny_config(tmp_path, "graceful")
    with monkeypatch.context() as patch:
        signal_during_epoch(patch, 3)
        outcome = train_run(config)
    assert (outcome.stopped_by, outcome.epoch) == ("SIGTERM", 3)
    assert checkpoint_epochs(config.run_dir) == [2, 3]
    assert logged_epochs(config.run_dir) == [1, 2, 3]
    assert "was cut" not in log_text(config.run_dir)
    train_run(config)
    assert_same_final_state(config.run_dir, tiny_reference, EPOCHS)
