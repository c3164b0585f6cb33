"""`heartgrid ab A B`: train seeds of two recipes (with overrides) and plan their comparison.

Each side is `"RECIPE key=value ..."`. Every seed of every side is one `heartgrid train`
subprocess (`python -m heartgrid.tools.cli train ...`), so runs are independent processes that
use the cores in parallel and each writes an ordinary run directory. The jobs interleave the
sides (A0, B0, A1, B1, ...) so that a stopped A/B still has balanced sides.

Interruptions lose nothing: the training processes run in sessions of their own, so Ctrl-C and
a closed terminal reach `ab` alone, which passes one stop (SIGINT, which every training process
takes as a stop whatever its `system.stop_signals`) on to each of them: each finishes its epoch,
saves and exits 3, and ab waits. A scheduler that signals every process of the job (Slurm,
systemd) reaches them too; the training process takes ab's stop, a moment later, as the same
stop (heartgrid/interrupts.py). The plan is kept in `OUT/ab.json`; the
same command with the same `--out` resumes: finished runs are kept, the others resume from
their checkpoints.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heartgrid.checkpoint.durable import replace_file_atomically
from heartgrid.checkpoint.manifest import list_checkpoints, read_manifest
from heartgrid.compare.runs import CompareError
from heartgrid.config.diff import RUN_IDENTITY_PATHS
from heartgrid.config.overrides import split_override
from heartgrid.config.run import RunConfig
from heartgrid.interrupts import EXIT_STOPPED, StopRequest
from heartgrid.recipes import build_config
from heartgrid.rundir import CHECKPOINTS_DIR
from heartgrid.threads import ThreadChoice, share_of_cores, thread_env

# ab names, places and seeds the runs itself: the run identity, except the recipe, which each
# side names as its first word (a `recipe=` override only relabels the run, as in `train`).
RESERVED_KEYS = tuple(path for path in RUN_IDENTITY_PATHS if path != "recipe")
LOG_TAIL_LINES = 30
PLAN_FILE = "ab.json"
ABORT_WAIT_S = 60.0
"""How long a second interrupt waits for the training processes before killing them."""


@dataclass(frozen=True)
class Side:
    label: str
    spec: str
    recipe: str
    overrides: list[str]


@dataclass(frozen=True)
class TrainJob:
    side: Side
    seed: int
    run: str
    argv: list[str]
    log: Path
    run_dir: Path
    total_timesteps: int

    def finished(self) -> bool:
        """Whether a checkpoint at the end of training exists (a resumed A/B keeps the run)."""
        checkpoints = list_checkpoints(self.run_dir / CHECKPOINTS_DIR)
        if not checkpoints:
            return False
        try:
            return read_manifest(checkpoints[-1]).agent_step >= self.total_timesteps
        except Exception:  # a damaged manifest: let the training process sort it out
            return False


class TrainingFailed(RuntimeError):
    """A training subprocess exited with an error; the message carries its log's tail."""


def parse_side(label: str, spec: str) -> Side:
    words = shlex.split(spec)
    if not words:
        raise CompareError(
            f"side {label} is empty; give a recipe and overrides, e.g. \"small_easy_shaped trainer.gamma=0.99\""
        )
    recipe, overrides = words[0], words[1:]
    for item in overrides:
        key, _ = split_override(item)
        if key in RESERVED_KEYS:
            raise CompareError(f"side {label} sets {key}; ab chooses run names, data_dir and seeds itself")
    return Side(label, spec, recipe, overrides)


def side_overrides(side: Side, *, steps: int | None, device: str | None) -> list[str]:
    """The side's overrides plus the ones ab applies to both sides (after the side's, so they win)."""
    extra = ["logging.console=none"]
    if steps is not None:
        extra.append(f"trainer.total_timesteps={steps}")
    if device is not None:
        extra.append(f"system.device={device}")
    return [*side.overrides, *extra]


def side_config(side: Side, *, steps: int | None, device: str | None) -> RunConfig:
    """The resolved config one seed of the side will train with (seed and run name aside)."""
    return build_config(side.recipe, side_overrides(side, steps=steps, device=device))


def plan_jobs(
    sides: list[Side], configs: list[RunConfig], seeds: int, data_dir: Path, log_dir: Path, *,
    steps: int | None, device: str | None,
) -> list[TrainJob]:
    jobs = []
    for seed in range(seeds):
        for side, config in zip(sides, configs):
            run = f"{side.label.lower()}-seed{seed}"
            argv = [
                sys.executable, "-m", "heartgrid.tools.cli", "train", side.recipe,
                *side_overrides(side, steps=steps, device=device),
                f"run={run}", f"data_dir={data_dir}", f"system.seed={seed}",
            ]
            jobs.append(TrainJob(side, seed, run, argv, log_dir / f"{run}.log", data_dir / run,
                                 config.trainer.total_timesteps))
    return jobs


def check_plan(out: Path, plan: dict[str, Any]) -> bool:
    """Write `OUT/ab.json` for a new A/B; for an existing one, require the same plan. Returns
    whether this resumes an earlier A/B. Refuses a non-empty `out` that holds no plan."""
    path = out / PLAN_FILE
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CompareError(f"{path}: unreadable ({e}); choose a new --out") from None
        changed = [f"{key}: {saved.get(key)!r} -> {plan[key]!r}" for key in plan if saved.get(key) != plan[key]]
        if changed:
            raise CompareError(f"{out} holds an A/B with another plan ({'; '.join(changed)}); rerun it "
                               "with the same arguments to resume it, or choose a new --out")
        return True
    if out.exists() and any(p.name != ".lock" for p in out.iterdir()):
        raise CompareError(f"{out} exists and is not empty (and holds no {PLAN_FILE}); choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    replace_file_atomically(path, (json.dumps(plan, indent=2) + "\n").encode())
    return False


def default_parallel(jobs: int) -> int:
    return max(1, min(jobs, os.cpu_count() or 1))


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-LOG_TAIL_LINES:])


def planned_threads(out: Path, parallel: int) -> ThreadChoice:
    """The torch thread count of every run of the A/B in `out`: chosen when it starts
    (`share_of_cores`) and kept in its plan file, so that a resumed A/B trains its remaining
    runs as the first ones were (the count changes float sums)."""
    path = out / PLAN_FILE
    plan = json.loads(path.read_text())
    if isinstance(plan.get("threads"), int):
        return ThreadChoice(plan["threads"], "as when this A/B started")
    choice = share_of_cores(parallel)
    replace_file_atomically(path, (json.dumps({**plan, "threads": choice.threads}, indent=2) + "\n").encode())
    return choice


def run_jobs(
    jobs: list[TrainJob], *, parallel: int, on_done: Callable[[TrainJob, float], None] | None = None,
    stop: StopRequest | None = None, threads: int | None = None,
) -> list[TrainJob]:
    """Run the jobs, at most `parallel` at once, each on `threads` torch threads (default:
    `share_of_cores`). On the first failure, stop the others (each saves its epoch) and raise
    TrainingFailed. When `stop` is requested, pass it on to the running jobs, start no more,
    wait for them, and return the jobs left unfinished."""
    env = thread_env(threads or share_of_cores(parallel).threads)
    pending = list(jobs)
    running: dict[subprocess.Popen, tuple[TrainJob, float]] = {}
    unfinished: list[TrainJob] = []
    passed_on = False
    try:
        while pending or running:
            if stop is not None:
                stop.announce()
            if stop is not None and stop.requested and not passed_on:
                stop_all(running)
                passed_on = True
                unfinished.extend(pending)
                pending.clear()
            while pending and len(running) < parallel:
                job = pending.pop(0)
                job.log.parent.mkdir(parents=True, exist_ok=True)
                with open(job.log, "a") as log:
                    # A session of its own: the terminal's Ctrl-C and hang-up reach ab only,
                    # which passes exactly one stop on (a second would abort the run unsaved).
                    process = subprocess.Popen(job.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                               start_new_session=True)
                running[process] = (job, time.monotonic())
            time.sleep(0.2)
            for process in [p for p in running if p.poll() is not None]:
                job, started = running.pop(process)
                # After a stop was passed on, a process that saved (3), or that the signal ended
                # while it was still starting (before its handlers), is unfinished, not failed.
                if passed_on and process.returncode in (EXIT_STOPPED, -signal.SIGINT, -signal.SIGTERM):
                    unfinished.append(job)
                    continue
                if process.returncode != 0:
                    raise TrainingFailed(
                        f"training {job.run} exited with status {process.returncode}; command:\n  "
                        f"{shlex.join(job.argv)}\nlast lines of {job.log}:\n{_tail(job.log)}"
                    )
                if on_done is not None:
                    on_done(job, time.monotonic() - started)
    except KeyboardInterrupt:  # a second interrupt: the runs abort too, without saving
        stop_all(running)
        raise
    finally:
        if not passed_on:
            stop_all(running)  # a failure elsewhere: the others save their epoch and stop
        wait_all(running)
    return unfinished


def stop_all(running: dict[subprocess.Popen, Any]) -> None:
    for process in running:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)


def wait_all(running: dict[subprocess.Popen, Any]) -> None:
    deadline = time.monotonic() + ABORT_WAIT_S
    for process in running:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
