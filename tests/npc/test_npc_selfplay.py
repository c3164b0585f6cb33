"""Self-play while training: `game.npc_policy_uri=self` plays this run's own checkpoints, a run
directory plays that run's, drawn again every npc_refresh_epochs (the latest, or uniformly over
the last npc_last_k); the draws are the seed's, and a stopped run resumes with the same
opponents (heartgrid/evaluation/npc.py, heartgrid/trainer/sides.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from npc_testing import assert_same, latest, records, stop_after, tiny_config

from heartgrid.config.overrides import apply_overrides
from heartgrid.trainer.logger import read_metrics
from heartgrid.trainer.metric_contract import missing_metrics
from heartgrid.trainer.run import train


def opponents(run_dir: Path) -> list[int]:
    """The epoch of the checkpoint the NPCs played in each epoch (0: the initial policy)."""
    return [int(r["npc/opponent_epoch"]) for r in read_metrics(run_dir)]


def self_play(data_dir: Path, run: str, epochs: int, *extra: str, checkpoint_interval: int = 1):
    return tiny_config(data_dir, run, epochs, "game.policy_agents_pct=0.5", "game.npc_policy_uri=self",
                       "game.npc_refresh_epochs=2", *extra, checkpoint_interval=checkpoint_interval)


@pytest.fixture(scope="module")
def latest_self(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(self_play(tmp_path_factory.mktemp("self"), "latest", 6))


def test_self_play_plays_the_latest_checkpoint_drawn_every_refresh(latest_self: Path):
    # Epochs 1-2 against the initial policy (no checkpoint yet), then every 2 epochs the newest.
    assert opponents(latest_self) == [0, 0, 2, 2, 4, 4]
    config = self_play(latest_self.parent, "latest", 6)
    assert missing_metrics(config, {name for r in read_metrics(latest_self) for name in r}) == []


def test_uniform_draws_over_the_last_k_are_the_seeds(tmp_path: Path):
    uniform = ["game.npc_sampling=uniform", "game.npc_last_k=3"]
    drawn = opponents(train(self_play(tmp_path, "a", 10, *uniform)))
    assert drawn == opponents(train(self_play(tmp_path, "b", 10, *uniform)))  # the same seed, the same draws
    assert drawn[:2] == [0, 0]
    for epoch in range(2, 10, 2):  # redrawn before epochs 3, 5, 7, 9, from the last 3 checkpoints
        assert drawn[epoch] == drawn[epoch + 1]
        assert epoch - 2 < drawn[epoch] <= epoch
    assert len(set(drawn[2:])) > 2  # it does change


def test_a_run_directory_is_sampled_as_its_checkpoints(latest_self: Path, tmp_path: Path):
    """Another run: its newest checkpoint (epoch 6, the run does not grow), or uniformly over
    its last 3 (4, 5, 6), redrawn every 2 epochs."""
    def against(run: str, *extra: str) -> list[int]:
        return opponents(train(tiny_config(tmp_path, run, 6, "game.policy_agents_pct=0.5",
                                           f"game.npc_policy_uri={latest_self}", "game.npc_refresh_epochs=2", *extra)))

    assert against("latest") == [6] * 6
    drawn = against("uniform", "game.npc_sampling=uniform", "game.npc_last_k=3")
    assert set(drawn) <= {4, 5, 6} and drawn[0] == drawn[1] and drawn[2] == drawn[3] and drawn[4] == drawn[5]
    assert drawn == against("uniform_again", "game.npc_sampling=uniform", "game.npc_last_k=3")


def test_a_stopped_self_play_run_resumes_with_the_same_opponents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Periodic checkpoints every 2 epochs, draws every 3: the stop after epoch 3 writes a
    checkpoint of epoch 3, which the uninterrupted run never had; the draw before epoch 4 must
    still take epoch 2's, or the two runs would part."""
    config = self_play(tmp_path, "straight", 6, "game.npc_refresh_epochs=3", checkpoint_interval=2)
    straight = train(config)
    assert opponents(straight) == [0, 0, 0, 2, 2, 2]

    stopped = apply_overrides(config, {"run": "stopped"})
    with monkeypatch.context() as patch:
        stop_after(patch, 3, "stop")
        train(stopped)
    assert latest(stopped.run_dir)[0] == 3
    train(stopped)
    assert records(stopped.run_dir) == records(straight)
    epoch, weights, state = latest(stopped.run_dir)
    _, reference_weights, reference_state = latest(straight)
    assert epoch == 6
    assert_same(weights, reference_weights, "policy")
    assert_same(state["npc"], reference_state["npc"], "npc")


def test_self_play_resumes_when_the_checkpoint_played_is_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """keep_last_n=2: the checkpoint of epoch 4, drawn before epoch 5, is deleted once epoch 6's
    is written; a run stopped after epoch 6 still resumes playing it (its weights are in the
    trainer state) and ends as the uninterrupted run."""
    config = self_play(tmp_path, "straight", 8, "game.npc_refresh_epochs=4", "trainer.keep_last_n=2")
    straight = train(config)
    assert opponents(straight) == [0, 0, 0, 0, 4, 4, 4, 4]

    stopped = apply_overrides(config, {"run": "stopped"})
    with monkeypatch.context() as patch:
        stop_after(patch, 6, "stop")
        train(stopped)
    assert not (stopped.run_dir / "checkpoints" / "epoch_000004").exists()
    train(stopped)
    assert records(stopped.run_dir) == records(straight)
    assert_same(latest(stopped.run_dir)[1], latest(straight)[1], "policy")
