"""Shared helpers for the fault-injection tests (issue #21): tiny runs of `heartgrid train` as
real subprocesses (so that SIGKILL, SIGTERM, a second process and a closed pipe are the real
thing), polling with timeouts instead of fixed sleeps, and the exact-resume comparisons of
tests/checkpoint/test_checkpoint_resume.py.

Every subprocess run trains SUB_EPOCHS tiny epochs (about 60 ms each on one CPU core, after
2-4 s of imports) with a checkpoint after every epoch, so that kills often land in or near a
checkpoint write. The uninterrupted reference of that command is the `reference` fixture
(conftest.py); in-process tests use `tiny_config` (4 epochs) and `tiny_reference`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The exact-resume helpers live with the checkpoint tests; test folders are not packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "checkpoint"))
from test_checkpoint_resume import (  # noqa: E402
    EPOCH_STEPS, EPOCHS, assert_same_tensors, stop_after, tiny_config, without_timing,
)

from heartgrid.checkpoint import CheckpointManager  # noqa: E402
from heartgrid.rundir import CHECKPOINTS_DIR, LOG_FILE, METRICS_FILE  # noqa: E402
from heartgrid.trainer.logger import read_metrics  # noqa: E402

__all__ = [
    "EPOCHS", "EPOCH_STEPS", "assert_same_tensors", "stop_after", "tiny_config", "without_timing",
]

SUB_EPOCHS = 50
"""Epochs of every subprocess run: long enough to be killed ten times, short enough to finish
in a few seconds."""

# tiny_config's settings as command-line overrides, one torch thread (a shared 2-core machine;
# the thread count also changes float reductions, and runs are compared bit for bit), a
# checkpoint after every epoch, and no TensorBoard (its writer thread only slows the kills).
TINY_OVERRIDES = [
    "system.device=cpu",
    "system.torch_threads=1",
    "trainer.num_envs=2",
    "trainer.bptt_horizon=16",
    f"trainer.batch_size={EPOCH_STEPS}",
    "trainer.minibatch_size=32",
    "trainer.update_epochs=2",
    f"trainer.total_timesteps={EPOCH_STEPS * SUB_EPOCHS}",
    "trainer.checkpoint_interval=1",
    "policy.hidden_size=16",
    "policy.lstm_layers=1",
    "game.max_steps=12",
    "logging.tensorboard=false",
    "logging.console=plain",
]

RECIPE = "small_easy_shaped"

# Generous limits for a loaded 2-core machine; only a hang exceeds them.
START_TIMEOUT = 120.0
RUN_TIMEOUT = 300.0


def cli_overrides(data_dir: Path, run: str, *extra: str) -> list[str]:
    return [*TINY_OVERRIDES, f"data_dir={data_dir}", f"run={run}", *extra]


def train_command(data_dir: Path, run: str, *extra: str) -> list[str]:
    """`heartgrid train small_easy_shaped <tiny overrides> data_dir=... run=...`, as a process."""
    return [sys.executable, "-m", "heartgrid.tools.cli", "train", RECIPE, *cli_overrides(data_dir, run, *extra)]


def default_signal_handling() -> None:
    """In the child before exec: a test runner started under nohup (or a harness that ignores
    SIGTERM) would pass SIG_IGN on, and the trainer leaves ignored signals ignored; the tests
    send these and expect the trainer's handling."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


STARTED: list[Train] = []
"""Every process started, for the cleanup fixture (conftest.py)."""


class Train:
    """One `heartgrid train` process; its stdout and stderr go to files (a pipe nobody reads
    could fill up and block it), unless `stdout=subprocess.PIPE` is asked for."""

    def __init__(self, command: list[str], logs: Path, name: str, stdout: Any = None):
        logs.mkdir(parents=True, exist_ok=True)
        self.command = command
        self.name = name
        self.stdout_path = logs / f"{name}.out"
        self.stderr_path = logs / f"{name}.err"
        self._err = open(self.stderr_path, "w")
        self._out = None if stdout is not None else open(self.stdout_path, "w")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command, stdout=stdout if stdout is not None else self._out, stderr=self._err,
            cwd=logs, text=True, preexec_fn=default_signal_handling,
        )
        self.pid = self.process.pid
        STARTED.append(self)

    def poll(self) -> int | None:
        return self.process.poll()

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL and reap (also when it has already exited)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._close()

    def finish(self, timeout: float = RUN_TIMEOUT) -> int:
        """Wait for the exit status; a process still running after `timeout` is a hang: killed,
        and the test fails."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} hung: still running after {timeout:.0f} s; "
                                 f"stderr: {self.stderr()[-2000:]}") from None
        self._close()
        return code

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stdout(self) -> str:
        return self.stdout_path.read_text() if self.stdout_path.exists() else ""

    def _close(self) -> None:
        for f in (self._out, self._err):
            if f is not None and not f.closed:
                f.close()


def run_train(command: list[str], logs: Path, name: str, timeout: float = RUN_TIMEOUT) -> tuple[int, str, str]:
    """Run to the end: (exit status, stdout, stderr)."""
    process = Train(command, logs, name)
    code = process.finish(timeout)
    return code, process.stdout(), process.stderr()


def wait_for(condition: Callable[[], Any], what: str, *, timeout: float = START_TIMEOUT,
             process: Train | None = None, interval: float = 0.01) -> Any:
    """Poll `condition` until it returns something truthy (returned). Fails after `timeout`, or
    as soon as `process` exits (it can no longer bring the condition about)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{process.name} exited with {process.poll()} while waiting for "
                                 f"{what}; stderr: {process.stderr()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ---- reading a run directory ------------------------------------------------------------------


def log_text(run_dir: Path) -> str:
    path = run_dir / LOG_FILE
    return path.read_text() if path.exists() else ""


def count_starts(run_dir: Path) -> int:
    """How many trainings have begun in the directory (their first log.txt line)."""
    return sum(1 for line in log_text(run_dir).splitlines()
               if "  starting: run " in line or "  resuming at epoch " in line)


def logged_epochs(run_dir: Path) -> list[int]:
    """The epochs of metrics.jsonl's complete records (0 records while it does not exist)."""
    if not (run_dir / METRICS_FILE).exists():
        return []
    return [int(r["metric/epoch"]) for r in read_metrics(run_dir)]


def checkpoint_epochs(run_dir: Path) -> list[int]:
    return [int(p.name.split("_")[1]) for p in CheckpointManager(run_dir).checkpoints()]


def leftovers(run_dir: Path) -> list[str]:
    """Temporary files and directories of interrupted writes, anywhere in the run directory."""
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")
                  if p.name.startswith((".tmp-", ".old-")))


def leftover_stamps(run_dir: Path) -> set[tuple[str, int, int]]:
    """`leftovers` with their inode and modification time: a kill that cuts a write short
    leaves a stamp that was not there before (a leftover of the same name may be older)."""
    stamps = set()
    for name in leftovers(run_dir) if run_dir.exists() else []:
        try:
            stat = (run_dir / name).stat()
        except FileNotFoundError:
            continue
        stamps.add((name, stat.st_ino, stat.st_mtime_ns))
    return stamps


def checkpoint_leftovers(run_dir: Path) -> list[str]:
    directory = run_dir / CHECKPOINTS_DIR
    try:
        return sorted(n for n in os.listdir(directory) if n.startswith((".tmp-", ".old-")))
    except FileNotFoundError:
        return []


def assert_one_line_error(stderr: str, *fragments: str) -> str:
    """A fault is reported as one line (no traceback) holding every fragment."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


# ---- comparing with an uninterrupted run --------------------------------------------------------

# Trainer state that must continue bit for bit; "timer" (wall clock) cannot, and "last_record"
# is compared without its timing keys.
EXACT_STATE = ("epoch", "agent_step", "optimizer", "schedules", "rng", "engine", "recurrent_state",
               "episode_starts", "stats", "log_window", "curriculum")


def assert_same_final_state(run_dir: Path, reference_dir: Path, epochs: int) -> None:
    """The latest checkpoints of both runs hold the same policy weights and trainer state (bit
    for bit) at epoch `epochs`."""
    checkpoint = CheckpointManager(run_dir).load_latest()
    reference = CheckpointManager(reference_dir).load_latest()
    assert checkpoint.refused == []
    assert checkpoint.epoch == reference.epoch == epochs
    assert_same_tensors(checkpoint.policy_weights, reference.policy_weights, "policy")
    state, expected = checkpoint.trainer_state, reference.trainer_state
    for key in EXACT_STATE:
        assert_same_tensors(state[key], expected[key], key)
    assert without_timing([state["last_record"]]) == without_timing([expected["last_record"]])


def assert_same_metrics(run_dir: Path, reference_dir: Path, epochs: int) -> None:
    """Each epoch logged exactly once, in order, with the reference's values (timing aside)."""
    records = read_metrics(run_dir)
    assert [int(r["metric/epoch"]) for r in records] == list(range(1, epochs + 1))
    assert without_timing(records) == without_timing(read_metrics(reference_dir))


def assert_strict_json_lines(path: Path) -> None:
    """Every line is standard JSON (no NaN or Infinity, which many readers refuse)."""
    def refuse(constant: str) -> None:
        raise AssertionError(f"{path} holds the non-standard JSON constant {constant}")

    for line in path.read_text().splitlines():
        json.loads(line, parse_constant=refuse)
