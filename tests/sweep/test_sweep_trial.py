"""One trial's life against a stand-in trainer (a script that logs metrics.jsonl records and
stops on SIGINT with status 3, as `heartgrid train` does): intermediate values reach the pruner,
a pruned trial is stopped, a finished one is scored (with its cost), a sweep's stop stops it."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest

from heartgrid.interrupts import StopRequest
from heartgrid.sweep.ledger import Ledger
from heartgrid.sweep.spec import SweepSpec, resolve
from heartgrid.sweep.store import SweepDir, report_steps
from heartgrid.sweep.trial import TrialJob, run_trial

EPOCHS, EPOCH_STEPS = 100, 64
STAND_IN = f"""
import json, pathlib, signal, sys, time
run_dir = pathlib.Path(sys.argv[1])
run_dir.mkdir(parents=True, exist_ok=True)
stop = []
signal.signal(signal.SIGINT, lambda *_: stop.append(1))
with open(run_dir / "metrics.jsonl", "a") as f:
    for epoch in range(1, {EPOCHS} + 1):
        if stop:
            sys.exit(3)
        record = {{"metric/agent_step": epoch * {EPOCH_STEPS}, "metric/epoch": epoch, "m": float(epoch),
                   "metric/total_time": epoch / 10}}
        f.write(json.dumps(record) + "\\n")
        f.flush()
        time.sleep(0.01)
"""


class PruneFrom(optuna.pruners.BasePruner):
    def __init__(self, step: int):
        self.step = step

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.last_step is not None and trial.last_step >= self.step


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trials run the stand-in, through the same launcher as a real trainer."""
    def argv(job: TrialJob) -> list[str]:
        return [sys.executable, "-m", "heartgrid.sweep.child", str(os.getpid()),
                sys.executable, "-c", STAND_IN, str(job.run_dir)]

    monkeypatch.setattr(TrialJob, "argv", argv)


def one_trial(tmp_path: Path, pruner: optuna.pruners.BasePruner, *, cost: str | None = None,
              stop: StopRequest | None = None):
    sweep = resolve("t", SweepSpec(recipe="small_cardinal", params={"trainer.ent_coef": "uniform:0:0.02"},
                                   steps=EPOCHS * EPOCH_STEPS, metric="final:m", cost=cost))
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name="t", storage=storage, pruner=pruner,
                                directions=["maximize"] + (["minimize"] if cost else []))
    where = SweepDir.of(tmp_path, "t")
    where.root.mkdir(parents=True)
    trial = study.ask()
    job = TrialJob(sweep, where, trial.number, "t-t000", {"trainer.ent_coef": trial.suggest_float("trainer.ent_coef", 0, 0.02)})
    result = run_trial(job, trial, Ledger(study, storage, "me", where.ask_lock), stop or StopRequest(),
                       threading.Event(), say=print)
    return result, study.trials[0], job


def test_intermediate_values_reach_the_pruner_and_a_pruned_trial_stops(tmp_path: Path, stand_in: None) -> None:
    grid = report_steps(EPOCHS * EPOCH_STEPS)
    result, trial, job = one_trial(tmp_path, PruneFrom(grid[4]))
    assert result.state == "pruned" and result.note == f"pruned at agent step {grid[4]}"
    # The running objective at each grid step, up to the pruning decision: final:m = the epoch.
    assert trial.intermediate_values == {step: step / EPOCH_STEPS for step in grid[:5]}
    logged = len((job.run_dir / "metrics.jsonl").read_text().splitlines())
    assert logged < EPOCHS  # stopped early, by the worker's SIGINT through the launcher


def test_a_finished_trial_is_scored_with_its_cost(tmp_path: Path, stand_in: None) -> None:
    result, _, _ = one_trial(tmp_path, optuna.pruners.NopPruner(), cost="time")
    assert result.state == "complete"
    assert result.values == [float(EPOCHS), EPOCHS / 10]  # final:m, and metric/total_time


def test_a_stopped_sweep_stops_its_trial(tmp_path: Path, stand_in: None) -> None:
    stop = StopRequest()
    metrics = tmp_path / "t" / "runs" / "t-t000" / "metrics.jsonl"

    def stop_once_it_logs() -> None:
        while not metrics.exists():
            time.sleep(0.01)
        stop.request("SIGTERM")

    threading.Thread(target=stop_once_it_logs, daemon=True).start()
    result, _, _ = one_trial(tmp_path, optuna.pruners.NopPruner(), stop=stop)
    assert result.state == "stopped" and result.note.startswith("stopped at agent step")
