"""An interrupted `heartgrid ab` loses nothing: Ctrl-C reaches ab alone, each running training
saves its epoch, and the same command with the same --out resumes the A/B to its report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

EPOCH_STEPS = 64
EPOCHS = 120
TINY = ("trainer.num_envs=2 trainer.bptt_horizon=16 trainer.batch_size=64 trainer.minibatch_size=32 "
        "trainer.update_epochs=1 policy.hidden_size=16 policy.lstm_layers=1 game.max_steps=12 "
        "logging.tensorboard=false trainer.checkpoint_interval=1000 system.torch_threads=1")


def ab_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "heartgrid.tools.cli", "ab", f"small_easy_shaped {TINY}",
            f"small_easy_shaped {TINY} trainer.ent_coef=0.02", "--seeds", "2", "--jobs", "2",
            "--steps", str(EPOCH_STEPS * EPOCHS), "--device", "cpu", "--out", str(out),
            "--metric", "overview/reward"]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def epochs(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [int(json.loads(line)["metric/epoch"]) for line in lines if line.endswith("}")]


def test_ctrl_c_saves_every_running_training_and_the_same_command_resumes(tmp_path: Path) -> None:
    out = tmp_path / "ab"
    runs = out / "runs"
    # A process group of its own, as a terminal gives a foreground job: Ctrl-C goes to the group.
    ab = subprocess.Popen(ab_command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True)
    try:
        wait_for(lambda: len(epochs(runs / "a-seed0")) >= 3 and len(epochs(runs / "b-seed0")) >= 3, 120,
                 "the first two trainings to log")
        os.killpg(ab.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        _, err = ab.communicate(timeout=60)
    finally:
        if ab.poll() is None:
            ab.kill()
    assert ab.returncode == 3, err
    assert "stopped by SIGINT" in err and f"--out {out}" in err
    for run in ("a-seed0", "b-seed0"):  # stopped mid-way: each saved its epoch (interval 1000)
        checkpoints = sorted(p.name for p in (runs / run / "checkpoints").iterdir())
        assert len(checkpoints) == 1 and checkpoints[0] != f"epoch_{EPOCHS:06d}", run
        log = (runs / run / "log.txt").read_text()
        assert log.count("stopping after this epoch") == 1  # ab's one stop, not the terminal's too
        assert "Ctrl-C: stopped at epoch" in log and "aborted" not in log
    assert not (runs / "a-seed1").exists()  # not started: nothing to lose

    again = subprocess.run(ab_command(out), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resuming: 0 finished, 4 to train or resume" in again.stdout
    for run in ("a-seed0", "b-seed0", "a-seed1", "b-seed1"):
        assert epochs(runs / run) == list(range(1, EPOCHS + 1)), run
    assert (out / "report.json").exists()

    # Everything finished: a third run trains nothing and reports again.
    third = subprocess.run(ab_command(out), capture_output=True, text=True, timeout=120)
    assert third.returncode == 0, third.stderr
    assert "resuming: 4 finished, 0 to train or resume" in third.stdout
    assert "at a time" in again.stdout and "at a time" not in third.stdout  # no concurrency to report
