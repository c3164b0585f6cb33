"""One trial: `heartgrid train` in a subprocess, followed through its metrics, scored or pruned.

The trial is an ordinary run directory, `runs/sweeps/NAME/runs/NAME-tNNN`, trained by

    heartgrid train RECIPE <sweep overrides> <trial's parameters> logging.console=none \
        run=NAME-tNNN data_dir=runs/sweeps/NAME/runs

(through the supervisor of child.py, in a session of its own), so it holds the run's lock, its
resolved config.json and its checkpoints like any run, and `heartgrid plot|eval|compare` read
it as they read any other. While it trains, the worker reads its metrics.jsonl as it grows and
reports the running objective to Optuna on a grid of agent steps (store.report_steps); when the
pruner says so, the worker sends SIGINT (a stop every trainer takes, whatever its
`system.stop_signals`, as `heartgrid ab` sends): the trainer saves a checkpoint and exits, and
the trial is PRUNED (its run directory stays, resumable by hand).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from heartgrid.config.overrides import OverrideError, validation_message
from heartgrid.errors import UsageError
from heartgrid.interrupts import EXIT_STOPPED, StopRequest
from heartgrid.recipes import build_config
from heartgrid.rundir.lock import RunLock, RunLockedError
from heartgrid.sweep.ledger import HEARTBEAT_S, Ledger
from heartgrid.sweep.objective import COSTS, MetricsTail
from heartgrid.sweep.spec import Sweep
from heartgrid.sweep.store import SweepDir, report_steps
from heartgrid.threads import thread_env

POLL_S = 0.5
LOG_TAIL_LINES = 15


class MetricNotLogged(UsageError):
    """The objective's metric is not in a finished trial's records: the sweep asks for a name
    the runs do not log (a typo), and every further trial would fail the same way."""


@dataclass(frozen=True)
class TrialResult:
    state: str
    """"complete", "pruned", "failed" or "stopped" (cut off by the sweep's stop: resumed later)."""
    values: list[float] | None = None
    note: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class TrialJob:
    sweep: Sweep
    where: SweepDir
    number: int
    run: str
    values: dict[str, Any]

    @property
    def run_dir(self) -> Path:
        return self.where.runs / self.run

    @property
    def log(self) -> Path:
        return self.where.logs / f"{self.run}.log"

    @property
    def overrides(self) -> list[str]:
        return [*self.sweep.trial_overrides(self.values), f"run={self.run}", f"data_dir={self.where.runs}"]

    def argv(self) -> list[str]:
        train = [sys.executable, "-m", "heartgrid.tools.cli", "train", self.sweep.spec.recipe,
                 *self.overrides, "logging.console=none"]
        return [sys.executable, "-m", "heartgrid.sweep.child", str(os.getpid()), *train]


def log_tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-LOG_TAIL_LINES:])


def check_config(job: TrialJob) -> str | None:
    """Why this trial's config is refused (a combination of values the config rejects), or None."""
    try:
        build_config(job.sweep.spec.recipe, job.overrides)
    except OverrideError as e:
        return str(e)
    except ValidationError as e:
        return validation_message(e)
    return None


def wait_until_free(run_dir: Path, stop: StopRequest, say: Callable[[str], None]) -> bool:
    """Wait while another process holds the run directory (the trainer of a killed worker,
    still saving); False when the sweep is stopped meanwhile."""
    told = False
    while True:
        try:
            RunLock(run_dir, "heartgrid sweep (checking the run directory is free)").acquire().release()
            return True
        except RunLockedError as e:
            if not told:
                say(f"  waiting: {e}")
                told = True
        if stop.requested:
            return False
        time.sleep(1.0)


@dataclass
class Reporter:
    """Reports the running objective to Optuna at each grid step the run has passed."""

    trial: Any
    tail: MetricsTail
    reduction: str
    pending: list[int]
    enabled: bool = True
    """False for a multi-objective study: Optuna takes no intermediate values there."""

    def report(self, prune: bool) -> int | None:
        """Report what is due; the step at which the pruner said stop, if it did."""
        while self.enabled and self.pending and self.pending[0] <= self.tail.step:
            step = self.pending.pop(0)
            value = self.tail.score(self.reduction, up_to=step)
            if value is None:
                continue  # the metric has not been logged yet (no episode has ended)
            self.trial.report(value, step)
            if prune and self.trial.should_prune():
                return step
        return None


def run_trial(job: TrialJob, trial: Any, ledger: Ledger, stop: StopRequest, abort: threading.Event,
              say: Callable[[str], None], threads: int = 1) -> TrialResult:
    """Train the trial to its end, a pruning decision or the sweep's stop, on `threads` torch
    threads (the sweep's `share_of_cores`)."""
    refused = check_config(job)
    if refused is not None:
        return TrialResult("failed", note=f"config refused: {refused}")
    if not wait_until_free(job.run_dir, stop, say):
        return TrialResult("stopped", note="stopped before it started")
    job.log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(job.log, "a") as log:
        process = subprocess.Popen(job.argv(), stdout=log, stderr=subprocess.STDOUT, env=thread_env(threads),
                                   start_new_session=True)
    tail = MetricsTail(job.run_dir, job.sweep.objective.metric)
    grid = report_steps(job.sweep.trial_steps(job.values), job.sweep.step_range[0])
    reporter = Reporter(trial, tail, job.sweep.objective.reduction, grid, enabled=not job.sweep.multi_objective)
    pruned_at: int | None = None
    stops_sent, beat = 0, time.monotonic()
    while process.poll() is None:
        time.sleep(POLL_S)
        wanted = 2 if abort.is_set() else 1 if stop.requested else 0
        if stops_sent < wanted:  # a second SIGINT makes the trainer abort without saving
            process.send_signal(signal.SIGINT)
            stops_sent += 1
        if time.monotonic() - beat > HEARTBEAT_S:
            ledger.set(job.number, heartbeat=time.time())
            beat = time.monotonic()
        if pruned_at is None and tail.poll():
            pruned_at = reporter.report(prune=True)
            if pruned_at is not None and not stops_sent:
                process.send_signal(signal.SIGINT)  # the trainer saves and exits (status 3)
                stops_sent = 1  # a sweep's stop now would be a second SIGINT: an abort
    seconds = time.monotonic() - started
    tail.poll()
    status = process.returncode
    if pruned_at is not None:  # saved and stopped (3), or done just before the stop came (0)
        return TrialResult("pruned", note=f"pruned at agent step {pruned_at}", seconds=seconds)
    if status == EXIT_STOPPED or (stops_sent and status != 0):
        return TrialResult("stopped", note=f"stopped at agent step {tail.step:.0f}", seconds=seconds)
    if status != 0:
        return TrialResult("failed", note=f"heartgrid train exited with status {status}; last lines of "
                           f"{job.log}:\n{log_tail(job.log)}", seconds=seconds)
    reporter.report(prune=False)  # the steps logged since the last poll: the curve is complete
    score = tail.score(job.sweep.objective.reduction)
    if score is None:
        raise MetricNotLogged(missing_metric_message(job.sweep.objective.metric, tail.names, job.run_dir))
    values = [score]
    if job.sweep.spec.cost is not None:
        values.append(float(tail.last.get(COSTS[job.sweep.spec.cost], 0.0)))
    return TrialResult("complete", values=values, seconds=seconds)


def missing_metric_message(metric: str, logged: set[str], run_dir: Path) -> str:
    import difflib

    close = difflib.get_close_matches(metric, sorted(logged), n=3)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else "the names it logs are in its metrics.jsonl"
    return f"--metric: the trial's run {run_dir} never logged {metric!r}; {hint}"
