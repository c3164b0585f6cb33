"""Shared pieces of the NPC and kickstart training tests: tiny small_cardinal runs, stopping a
run in process (as tests/checkpoint/test_checkpoint_resume.py does), exact comparisons."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from heartgrid.checkpoint import CheckpointManager
from heartgrid.recipes import build_config
from heartgrid.trainer.logger import read_metrics
from heartgrid.trainer.trainer import Trainer

# small_cardinal (2 agents per env), shrunk: 4 envs, bptt 16, 128 agent steps of the learner
# per epoch (2 rollout passes with one learner per env, 1 without NPCs), 2 minibatches, 2
# update epochs; episodes of 48 steps, so that every epoch ends some and greedy NPCs make hearts.
EPOCH_STEPS = 128
TINY = [
    "system.device=cpu", "system.torch_threads=1", "logging.console=none", "logging.tensorboard=false",
    "trainer.num_envs=4", "trainer.bptt_horizon=16", f"trainer.batch_size={EPOCH_STEPS}",
    "trainer.minibatch_size=64", "trainer.update_epochs=2", "policy.hidden_size=16", "policy.lstm_layers=1",
    "game.max_steps=48",
]
GREEDY_NPCS = ["game.policy_agents_pct=0.5", "game.npc_policy_uri=scripted:greedy"]
TIMING = ("overview/sps", "overview/epoch_time_s", "metric/total_time", "timing/")


def tiny_config(data_dir: Path, run: str, epochs: int, *extra: str, checkpoint_interval: int = 2):
    return build_config("small_cardinal", [
        *TINY, f"trainer.total_timesteps={EPOCH_STEPS * epochs}",
        f"trainer.checkpoint_interval={checkpoint_interval}", f"data_dir={data_dir}", f"run={run}", *extra])


def without_timing(records: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in records]


def records(run_dir: Path) -> list[dict[str, float]]:
    return without_timing(read_metrics(run_dir))


def latest(run_dir: Path) -> tuple[int, dict[str, torch.Tensor], dict[str, Any]]:
    checkpoint = CheckpointManager(run_dir).load_latest()
    return checkpoint.epoch, checkpoint.policy_weights, checkpoint.trainer_state


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Nested containers equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def engine_content(state: dict[str, Any]) -> dict[str, Any]:
    """An engine state with each env's game written out: the engine numbers the games it holds
    by object identity, so two runs in the same state may number the same games otherwise (a
    resumed run's games are new objects)."""
    state = dict(state)
    games = state.pop("games")
    state["env_game"] = [games[i] for i in state["env_game"]]
    state["pending"] = {env: (games[i], task) for env, (i, task) in state["pending"].items()}
    return state


def stop_after(monkeypatch: pytest.MonkeyPatch, epoch: int, how: str) -> None:
    """A real SIGINT at the end of `epoch` (`stop`: the trainer saves and returns), or an abort
    in the middle of the epoch after it (`kill`: KeyboardInterrupt, nothing saved, as after a
    kill -9 the run resumes from its last periodic checkpoint)."""
    original = Trainer.train_epoch

    def train_epoch(self: Trainer) -> Any:
        if how == "kill" and self.epoch == epoch:
            raise KeyboardInterrupt
        record = original(self)
        if how == "stop" and self.epoch == epoch:
            signal.raise_signal(signal.SIGINT)
        return record

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
