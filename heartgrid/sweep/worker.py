"""Workers: each asks the study for a trial, trains it (trial.py), tells the result, and again.

`--workers W` runs W workers as threads of the `heartgrid sweep` process: a worker only waits
on its trial's subprocess and reads its metrics, so threads are enough, and one process stops
cleanly on one Ctrl-C. Another `heartgrid sweep` with the same name (and `--storage`) on this
or another machine adds its workers to the same study: Optuna gives every `ask` a trial of its
own, and the ledger (ledger.py) keeps the budget and resumes trials whose worker is gone.

A worker ends when N trials have finished, when the remaining places are taken by running
trials, when the sweep is stopped, or after MAX_FAILURES_IN_A_ROW failed trials (a sweep whose
every trial fails is a broken setup, not bad luck).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import TrialState

from heartgrid.interrupts import StopRequest, say
from heartgrid.sweep.ledger import Ledger, is_surplus, next_move, worker_label
from heartgrid.sweep.spec import Sweep
from heartgrid.sweep.store import SweepDir, create_study, make_pruner, make_sampler, open_storage
from heartgrid.sweep.trial import MetricNotLogged, TrialJob, TrialResult, run_trial
from heartgrid.threads import share_of_cores

MAX_FAILURES_IN_A_ROW = 3


def format_values(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


@dataclass
class Workers:
    """The workers of one `heartgrid sweep` process and how they ended."""

    sweep: Sweep
    where: SweepDir
    storage_url: str | None
    budget: int
    count: int = 1
    stop: StopRequest = field(default_factory=StopRequest)
    abort: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    failed_out: bool = False
    """A worker gave up after MAX_FAILURES_IN_A_ROW failed trials."""
    threads: int = 1
    """Torch threads of every trial of this process (chosen once: `run`)."""

    def run(self) -> None:
        """Run the workers until they end; a second interrupt (KeyboardInterrupt in the main
        thread) makes them abort their trials unsaved, then propagates."""
        # Once, before any trial keeps a core busy: each trial's share of the free cores.
        self.threads = share_of_cores(self.count).threads
        threads = [threading.Thread(target=self._guarded, args=(i,), name=f"sweep-worker-{i}", daemon=True)
                   for i in range(self.count)]
        for thread in threads:
            thread.start()
            time.sleep(0.2)  # staggered: the first creates the study, the others load it
        try:
            while any(t.is_alive() for t in threads):
                self.stop.announce()  # a signal's stop is told from here, not from its handler
                for thread in threads:
                    thread.join(timeout=0.2)
            self.stop.announce()
        except KeyboardInterrupt:
            self.abort.set()
            for thread in threads:
                thread.join()
            raise

    def _guarded(self, index: int) -> None:
        try:
            self._work(index)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            self.errors.append(e)
            self.stop.request("error")  # the other workers save their trials and stop

    def _work(self, index: int) -> None:
        storage = open_storage(self.storage_url, self.where)  # one per thread: Optuna's storages are
        study = create_study(self.sweep, storage, self.budget)  # not meant to be shared across threads
        study.pruner = make_pruner(self.sweep)
        study.sampler = make_sampler(self.sweep.spec)
        label = worker_label(index)
        ledger = Ledger(study, storage, label, self.where.ask_lock)
        failures = 0
        while not self.stop.requested:
            with ledger.asking():
                for number, why in ledger.retire_stale():
                    say(f"  t{number:03d} was cut off ({why}): it resumes from its checkpoint as a new trial")
                move = next_move(ledger.trials(), self.budget)
                if move != "ask":
                    return
                if self.sweep.spec.seed is not None:
                    study.sampler = make_sampler(self.sweep.spec, offset=len(ledger.trials()))
                trial = study.ask()
                if is_surplus(ledger.trials(), trial.number, self.budget):
                    ledger.set(trial.number, surplus=True, error="asked after the budget was taken (a race)")
                    study.tell(trial, state=TrialState.FAIL)
                    return
                values = {p.key: p.suggest(trial) for p in self.sweep.params}
                run = trial.user_attrs.get("run") or f"{self.sweep.name}-t{trial.number:03d}"
                job = TrialJob(self.sweep, self.where, trial.number, run, values)
                ledger.set(trial.number, run=run, run_dir=str(job.run_dir.resolve()), log=str(job.log.resolve()),
                           host=socket.gethostname(), pid=os.getpid(), worker=label, heartbeat=time.time())
            resumes = trial.user_attrs.get("resumes")
            again = f" (resumes t{resumes:03d})" if resumes is not None else ""
            say(f"  t{trial.number:03d} start{again}: {format_values(values)}  ->  {job.run_dir}")
            try:
                result = run_trial(job, trial, ledger, self.stop, self.abort, say, threads=self.threads)
            except MetricNotLogged as e:  # every trial would fail alike: the sweep stops (exit 2)
                ledger.set(trial.number, error=str(e))
                study.tell(trial, state=TrialState.FAIL)
                raise
            self._tell(study, ledger, trial, result)
            failures = failures + 1 if result.state == "failed" else 0
            if failures >= MAX_FAILURES_IN_A_ROW:
                self.failed_out = True
                say(f"heartgrid sweep: error: {failures} trials in a row failed; this worker stops "
                    "(see the trials' logs above and in the sweep's logs/)", err=True)
                return

    def _tell(self, study: Any, ledger: Ledger, trial: Any, result: TrialResult) -> None:
        tag, took = f"  t{trial.number:03d}", f"({result.seconds:.1f}s)"
        if result.state == "complete":
            study.tell(trial, result.values)
            cost = f", cost {result.values[1]:.4g}" if result.values and len(result.values) > 1 else ""
            say(f"{tag} complete: score {result.values[0]:.4g}{cost} {took}")  # type: ignore[index]
        elif result.state == "pruned":
            ledger.set(trial.number, pruned=result.note)
            study.tell(trial, state=TrialState.PRUNED)
            say(f"{tag} {result.note} {took}")
        elif result.state == "failed":
            ledger.set(trial.number, error=result.note[:2000])
            study.tell(trial, state=TrialState.FAIL)
            say(f"{tag} failed: {result.note} {took}", err=True)
        else:  # stopped: resumed by whichever worker asks next, here or on another machine
            ledger.retire(ledger.storage.get_trial(ledger.trial_id(trial.number)),
                          f"{result.note} by the sweep's stop; resumed as a new trial")
            say(f"{tag} {result.note}; the same command resumes it {took}")
