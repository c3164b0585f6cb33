"""Helpers for the tests that train on 2 ranks for real: `heartgrid train ... --nproc 2` as a
subprocess (torchrun, gloo on the CPU, one torch thread per rank), the processes it starts
(found through /proc, to kill one), and polling with generous timeouts instead of sleeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from heartgrid.checkpoint import CheckpointManager
from heartgrid.recipes import build_config
from heartgrid.rundir import CHECKPOINTS_DIR, METRICS_FILE
from heartgrid.trainer.metric_contract import missing_metrics

RECIPE = "small_cardinal"

# A tiny run: per rank 4 envs x 2 agents = 8 slots, bptt 16, 2 rollout passes (256 agent steps),
# minibatches of 4 segments (4 per update epoch), 2 update epochs; short episodes so that every
# epoch ends some; no TensorBoard; a checkpoint after every epoch.
PER_RANK = {"trainer.num_envs": 4, "trainer.batch_size": 256, "trainer.minibatch_size": 64}
COMMON = [
    "system.device=cpu", "system.torch_threads=1", "logging.console=plain", "logging.tensorboard=false",
    "trainer.bptt_horizon=16", "trainer.update_epochs=2", "trainer.checkpoint_interval=1",
    "policy.hidden_size=32", "policy.lstm_layers=1", "game.max_steps=24",
]

START_TIMEOUT = 120.0
RUN_TIMEOUT = 300.0


def sizes(ranks: int, world: int = 2, micro: int | None = None) -> list[str]:
    """The per-rank sizes for `ranks` ranks standing in for a world of `world` (1 rank: all of
    them); `micro`: a 2-rank micro_batch_size."""
    factor = world // ranks
    per_rank = dict(PER_RANK, **({"trainer.micro_batch_size": micro} if micro else {}))
    return [f"{key}={value * factor}" for key, value in per_rank.items()]


def overrides(data_dir: Path, run: str, ranks: int, epochs: int, *extra: str, micro: int | None = None) -> list[str]:
    world_steps = PER_RANK["trainer.batch_size"] * 2 * epochs
    return [*COMMON, *sizes(ranks, micro=micro), f"trainer.total_timesteps={world_steps}", f"data_dir={data_dir}",
            f"run={run}", *extra]


def launch_command(data_dir: Path, run: str, epochs: int, *extra: str, micro: int | None = None) -> list[str]:
    """`heartgrid train ... --nproc 2` as a process."""
    return [sys.executable, "-m", "heartgrid", "train", RECIPE,
            *overrides(data_dir, run, 2, epochs, *extra, micro=micro), "--nproc", "2"]


STARTED: list[subprocess.Popen] = []
"""Every launcher a test started; conftest.py kills what is left of them after each test."""


def start(command: list[str]) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=_default_signals)
    STARTED.append(process)
    return process


def _default_signals() -> None:
    for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


def run(command: list[str]) -> subprocess.CompletedProcess:
    process = start(command)
    out, err = process.communicate(timeout=RUN_TIMEOUT)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the run ended ({process.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def records(run_dir: Path) -> list[dict]:
    path = run_dir / METRICS_FILE
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip().endswith("}")]


def children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def rank_pid(launcher: int, rank: int) -> int | None:
    """The PID of the process of this RANK among the launcher's descendants."""
    for pid in descendants(launcher):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and b"HEARTGRID_STATUS_DIR" in b" ".join(environ):
            return pid
    return None


def kill_all(process: subprocess.Popen) -> None:
    """SIGKILL the launcher, torchrun and every rank at once (a lost node)."""
    pids = [process.pid, *descendants(process.pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.communicate()


def kill_leftovers() -> None:
    """What a failed test left running: its launchers' process trees."""
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            kill_all(process)


def weights(checkpoint: Path) -> dict:
    return load_file(checkpoint / "policy.safetensors")


def latest(run_dir: Path) -> Path:
    return CheckpointManager(run_dir).checkpoints()[-1]


def without_timing(record: dict) -> dict:
    return {k: v for k, v in record.items()
            if not k.startswith("timing/") and k not in ("overview/sps", "overview/epoch_time_s", "metric/total_time")}


def assert_two_equal_one(data_dir: Path, *extra: str, micro: int | None = None) -> list[dict]:
    """Run `two` (2 ranks) made the update of run `one` (one process with all the envs): the
    first checkpoint's weights, and every metrics record, within float tolerance (sums in
    another order: ranks, DDP's buckets); every contract metric logged. Returns two's records."""
    first = sorted((data_dir / "two" / CHECKPOINTS_DIR).iterdir())[0]
    a, b = weights(data_dir / "one" / CHECKPOINTS_DIR / first.name), weights(first)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)

    # Rank 0's metrics file has the world's values: the one process's, record by record (the
    # first update equal; the second follows it within float tolerance).
    mine, reference = records(data_dir / "two"), records(data_dir / "one")
    assert [r["metric/agent_step"] for r in mine] == [r["metric/agent_step"] for r in reference] == [512, 1024]
    for got, want in zip(mine, reference, strict=True):
        got, want = without_timing(got), without_timing(want)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name] == pytest.approx(want[name], rel=1e-3, abs=1e-5), name
    config = build_config(RECIPE, overrides(data_dir, "two", 2, 2, *extra, micro=micro))
    assert missing_metrics(config, {name for record in mine for name in record}) == []
    return mine
