"""Real sweeps of tiny trials: two sweep processes share one study and find a learning rate
better than the worst; a sweep killed mid-trial resumes its trials from their checkpoints."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from heartgrid.config.diff import RUN_IDENTITY_PATHS, diff_configs
from heartgrid.recipes import build_config
from heartgrid.rundir import read_run_config
from heartgrid.sweep.store import report_steps
from heartgrid.tools import cli

LR = "trainer.optimizer.learning_rate"
# A few seconds of training per trial on a busy 2-core machine; checkpoints only when stopped.
TINY = ["trainer.num_envs=2", "trainer.bptt_horizon=16", "trainer.batch_size=64", "trainer.minibatch_size=32",
        "trainer.update_epochs=1", "policy.hidden_size=16", "policy.lstm_layers=1", "game.max_steps=24",
        "logging.tensorboard=false", "system.torch_threads=1", "system.device=cpu", "trainer.checkpoint_interval=1000"]
EPOCH_STEPS = 64


def sweep_command(root: Path, name: str, trials: int, steps: int, *options: str) -> list[str]:
    return [sys.executable, "-m", "heartgrid.tools.cli", "sweep", "small_cardinal", *TINY, "--name", name,
            "--dir", str(root), "--param", f"{LR}=log:1e-4:1e-1", "--metric", "auc:overview/reward",
            "--trials", str(trials), "--steps", str(steps), *options]


def load(root: Path, name: str) -> optuna.Study:
    storage = JournalStorage(JournalFileBackend(str(root / name / "journal.log")))
    return optuna.load_study(study_name=name, storage=storage)


def epochs(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [int(json.loads(line)["metric/epoch"]) for line in lines if line.endswith("}")]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_two_sweep_processes_share_one_study_and_find_a_better_learning_rate(tmp_path: Path, capsys) -> None:
    command = sweep_command(tmp_path, "lr", 4, 1024, "--seed", "0")
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, out + err

    trials = load(tmp_path, "lr").get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both processes trained trials
    run_dirs = [Path(t.user_attrs["run_dir"]) for t in trials]
    assert sorted(p.name for p in run_dirs) == ["lr-t000", "lr-t001", "lr-t002", "lr-t003"]
    for trial, run_dir in zip(trials, run_dirs):  # each trial trained once, in a run of its own
        log = (run_dir / "log.txt").read_text()
        assert log.count("starting: run") == 1 and "resuming" not in log, log
        assert epochs(run_dir) == list(range(1, 1024 // EPOCH_STEPS + 1))
        config = json.loads((run_dir / "config.json").read_text())
        assert config["trainer"]["optimizer"]["learning_rate"] == trial.params[LR]  # exactly
        # The running objective went to the pruner as it trained; at the end it is the score.
        assert set(trial.intermediate_values) <= set(report_steps(1024)) and 1024 in trial.intermediate_values
        assert trial.intermediate_values[1024] == pytest.approx(trial.value)
    scores = {t.number: t.value for t in trials}
    best = load(tmp_path, "lr").best_trial
    assert best.value == max(scores.values()) > min(scores.values())

    assert cli.main(["sweep", "show", "lr", "--dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    rows = {line.split()[1]: line for line in shown.splitlines() if line[:1] in "│|" and " t00" in line}
    assert sorted(rows) == ["t000", "t001", "t002", "t003"] and all("complete" in r for r in rows.values())
    assert f"best: t{best.number:03d}, score {best.value:.4g} (auc:overview/reward, maximized)" in shown
    command_line = next(line for line in shown.splitlines() if line.startswith("  heartgrid train small_cardinal"))
    assert f"{LR}={best.params[LR]!r}" in command_line and "trainer.total_timesteps=1024" in command_line
    # The command trains the best trial's config exactly (only the display differs).
    words = shlex.split(command_line)
    again = build_config(words[2], words[3:])
    best_config = read_run_config(best.user_attrs["run_dir"])
    assert diff_configs(best_config, again, ignore=RUN_IDENTITY_PATHS) == [("logging.console", "none", "rich")]
    assert "parameter importances" in shown
    for png in ("history.png", "importances.png", "slice.png"):
        assert (tmp_path / "lr" / png).stat().st_size > 0, png


def test_a_killed_sweep_resumes_its_trials_from_their_checkpoints(tmp_path: Path) -> None:
    total_epochs = 40
    command = sweep_command(tmp_path, "k", 2, EPOCH_STEPS * total_epochs, "--workers", "2")
    runs = tmp_path / "k" / "runs"
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: all(len(epochs(runs / f"k-t00{i}")) >= 3 for i in (0, 1)), 120, "both trials to log")
        first.kill()  # SIGKILL: no chance to tidy up
    finally:
        first.communicate()
    # Their trainers are told (the launcher's parent-death signal): each saves and stops.
    wait_for(lambda: all(any((runs / f"k-t00{i}" / "checkpoints").glob("epoch_*")) for i in (0, 1))
             and not any((runs / f"k-t00{i}" / ".lock").exists() for i in (0, 1)), 60, "both trials to save")
    cut = {i: len(epochs(runs / f"k-t00{i}")) for i in (0, 1)}
    assert all(n < total_epochs for n in cut.values()), cut

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("was cut off (its worker (PID") == 2, again.stdout

    trials = load(tmp_path, "k").get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 2 + [TrialState.COMPLETE] * 2
    resumed = {t.user_attrs["resumes"]: t for t in trials[2:]}
    assert sorted(resumed) == [0, 1]
    for old in trials[:2]:  # nothing lost: each cut trial went on in its own run directory
        new = resumed[old.number]
        assert "cut off" in old.user_attrs["error"] and old.user_attrs["superseded"]
        assert new.params == old.params and new.user_attrs["run_dir"] == old.user_attrs["run_dir"]
        run_dir = Path(new.user_attrs["run_dir"])
        assert f"resuming at epoch {cut[old.number]}" in (run_dir / "log.txt").read_text()
        assert epochs(run_dir) == list(range(1, total_epochs + 1))
    assert sorted(p.name for p in runs.iterdir()) == ["k-t000", "k-t001"]  # resumes train in the old ones
