"""`heartgrid ab A B`: train seeds of two recipes (with overrides) and plan their comparison.

Each side is `"RECIPE key=value ..."`. Every seed of every side is one `heartgrid train`
subprocess (`python -m heartgrid.tools.cli train ...`), so runs are independent processes that
use the cores in parallel and each writes an ordinary run directory. The jobs interleave the
sides (A0, B0, A1, B1, ...) so that a stopped A/B still has balanced sides.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from heartgrid.compare.runs import CompareError
from heartgrid.config.diff import RUN_IDENTITY_PATHS
from heartgrid.config.overrides import split_override
from heartgrid.config.run import RunConfig
from heartgrid.recipes import build_config

# ab names, places and seeds the runs itself: the run identity, except the recipe, which each
# side names as its first word (a `recipe=` override only relabels the run, as in `train`).
RESERVED_KEYS = tuple(path for path in RUN_IDENTITY_PATHS if path != "recipe")
LOG_TAIL_LINES = 30


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
    sides: list[Side], seeds: int, data_dir: Path, log_dir: Path, *, steps: int | None, device: str | None
) -> list[TrainJob]:
    jobs = []
    for seed in range(seeds):
        for side in sides:
            run = f"{side.label.lower()}-seed{seed}"
            argv = [
                sys.executable, "-m", "heartgrid.tools.cli", "train", side.recipe,
                *side_overrides(side, steps=steps, device=device),
                f"run={run}", f"data_dir={data_dir}", f"system.seed={seed}",
            ]
            jobs.append(TrainJob(side, seed, run, argv, log_dir / f"{run}.log"))
    return jobs


def default_parallel(jobs: int) -> int:
    return max(1, min(jobs, os.cpu_count() or 1))


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-LOG_TAIL_LINES:])


def run_jobs(
    jobs: list[TrainJob], *, parallel: int, on_done: Callable[[TrainJob, float], None] | None = None
) -> None:
    """Run the jobs, at most `parallel` at once; on the first failure stop the others and raise."""
    # Each process gets an equal share of the cores for its intra-op threads, so that parallel
    # runs do not oversubscribe the machine.
    env = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // parallel))
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    pending = list(jobs)
    running: dict[subprocess.Popen, tuple[TrainJob, float]] = {}
    try:
        while pending or running:
            while pending and len(running) < parallel:
                job = pending.pop(0)
                job.log.parent.mkdir(parents=True, exist_ok=True)
                with open(job.log, "w") as log:
                    process = subprocess.Popen(job.argv, stdout=log, stderr=subprocess.STDOUT, env=env)
                running[process] = (job, time.monotonic())
            time.sleep(0.2)
            for process in [p for p in running if p.poll() is not None]:
                job, started = running.pop(process)
                if process.returncode != 0:
                    raise TrainingFailed(
                        f"training {job.run} exited with status {process.returncode}; command:\n  "
                        f"{shlex.join(job.argv)}\nlast lines of {job.log}:\n{_tail(job.log)}"
                    )
                if on_done is not None:
                    on_done(job, time.monotonic() - started)
    finally:
        for process in running:
            process.terminate()
        for process in running:
            process.wait()
