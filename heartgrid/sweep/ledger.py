"""The sweep's book of trials: the budget of N, who runs what, and trials whose worker is gone.

Every trial is one Optuna trial and one run directory. Its user attributes say where it runs:
`run` (the run name), `run_dir`, `log`, `host`, `pid` and `worker` (the worker that runs it) and
`heartbeat` (the time its worker last saw it alive, renewed every minute).

**A trial is never silently lost.** A trial cut off mid-run (its sweep stopped by a signal, or
killed outright) is *resumed*: it is marked FAIL with `superseded` (the worker that retired it)
and `error` (why), and the same parameters are enqueued as a new trial with `resumes` = the old
trial's number and the same `run`, so the new trial trains in the same run directory and
`heartgrid train` continues from its last checkpoint (from scratch if it had none). Its worker
is known to be gone when it was on this host and its PID is dead, or, for another host, when its
heartbeat is older than HEARTBEAT_GRACE_S. Two workers that find the same stale trial at once
both write `superseded`; the one whose name the trial keeps (the last accepted write before the
FAIL) is the one that enqueues its resume.

**The budget.** N counts every trial except the superseded ones (their resumes count instead)
and the surplus ones: a worker that asks for a trial checks that fewer than N counted trials
came before it; if not (workers on two machines asked at the same moment for the last place),
the new trial is marked FAIL with `surplus` and the worker ends. The workers of one machine ask
under a file lock, so among them this cannot happen.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heartgrid.rundir.lock import pid_alive

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

HEARTBEAT_S = 60.0
HEARTBEAT_GRACE_S = 600.0
"""A trial of another host whose worker has not renewed its heartbeat for this long is resumed."""

_ASK_THREAD_LOCK = threading.Lock()


def worker_label(index: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{index}"


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that use up the budget: all but superseded and surplus ones."""
    return [t for t in trials if not t.user_attrs.get("superseded") and not t.user_attrs.get("surplus")]


def next_move(trials: list[FrozenTrial], budget: int) -> str:
    """"ask" for another trial, "done" (N trials finished) or "full" (the remaining places are
    being run by other workers)."""
    from optuna.trial import TrialState

    live = counted(trials)
    if sum(t.state.is_finished() for t in live) >= budget:
        return "done"
    if any(t.state == TrialState.WAITING for t in live) or len(live) < budget:
        return "ask"
    return "full"


def is_surplus(trials: list[FrozenTrial], number: int, budget: int) -> bool:
    mine = next((t for t in trials if t.number == number), None)
    if mine is not None and "resumes" in mine.user_attrs:
        return False  # a resume takes the place of the trial it resumes
    return sum(t.number < number for t in counted(trials)) >= budget


def gone_reason(trial: FrozenTrial, now: float | None = None) -> str | None:
    """Why a RUNNING trial's worker is known to be gone, or None while it may be alive."""
    attrs, now = trial.user_attrs, now or time.time()
    host, pid = attrs.get("host"), attrs.get("pid")
    if host == socket.gethostname() and isinstance(pid, int):
        if pid == os.getpid() or pid_alive(pid):
            return None
        return f"its worker (PID {pid}) is gone"
    beat = attrs.get("heartbeat")
    if not isinstance(beat, (int, float)):
        beat = trial.datetime_start.timestamp() if trial.datetime_start else now
    if now - beat > HEARTBEAT_GRACE_S:
        return f"its worker on {host or 'an unknown host'} has not been heard from for {(now - beat) / 60:.0f} min"
    return None


class Ledger:
    """One worker's handle on the study's trials (Optuna's storage API: one per thread)."""

    def __init__(self, study: optuna.Study, storage: Any, label: str, lock_path: Path):
        self.study, self.storage, self.label, self.lock_path = study, storage, label, lock_path
        self.study_id = storage.get_study_id_from_name(study.study_name)

    def trials(self) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def set(self, number: int, **attrs: Any) -> None:
        trial_id = self.trial_id(number)
        for key, value in attrs.items():
            self.storage.set_trial_user_attr(trial_id, key, value)

    @contextmanager
    def asking(self) -> Iterator[None]:
        """The local workers' turn to count trials and ask for one (a file lock, held briefly)."""
        import fcntl

        with _ASK_THREAD_LOCK, open(self.lock_path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def retire(self, trial: FrozenTrial, reason: str) -> int | None:
        """Mark a cut-off trial FAIL and enqueue its resume (same params, same run); returns the
        old trial's number when this worker did so, None when another worker got there first."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        trial_id = self.trial_id(trial.number)
        try:
            self.storage.set_trial_user_attr(trial_id, "superseded", self.label)
            self.storage.set_trial_user_attr(trial_id, "error", reason)
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            return None
        if self.storage.get_trial(trial_id).user_attrs.get("superseded") != self.label:
            return None
        attrs = {"resumes": trial.number}
        if "run" in trial.user_attrs:
            attrs["run"] = trial.user_attrs["run"]
        self.study.enqueue_trial(dict(trial.params), user_attrs=attrs)
        return trial.number

    def retire_stale(self) -> list[tuple[int, str]]:
        """Resume the RUNNING trials whose worker is gone: [(number, why)]."""
        from optuna.trial import TrialState

        retired = []
        for trial in self.trials():
            if trial.state != TrialState.RUNNING:
                continue
            reason = gone_reason(trial)
            if reason is not None and self.retire(trial, f"cut off: {reason}; resumed as a new trial") is not None:
                retired.append((trial.number, reason))
        return retired
