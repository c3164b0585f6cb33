"""Replays while training: `record_training_replay` plays one whole episode of the run's game
with the current policy into runs/<run>/replays/epoch_<N>.hgreplay, and leaves training
exactly as it would have been without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from heartgrid.checkpoint.manager import CheckpointManager
from heartgrid.config.run import PolicyConfig
from heartgrid.engine.batched import BatchedEngine
from heartgrid.policies import make_policy
from heartgrid.recipes import build_config
from heartgrid.replay.format import find_replays, read_replay
from heartgrid.replay.reader import ReplayState
from heartgrid.trainer.replays import record_training_replay, replay_due
from heartgrid.trainer.trainer import Trainer

SMALL = ["system.device=cpu", "system.torch_threads=1", 'logging.console="none"', "trainer.num_envs=4",
         "trainer.batch_size=256", "trainer.minibatch_size=128", "trainer.total_timesteps=768",
         "game.max_steps=40", "policy.hidden_size=16", "policy.lstm_layers=1",
         "logging.replay_interval=2"]


def small_policy(config) -> torch.nn.Module:
    engine = BatchedEngine(config.game, 1)
    torch.manual_seed(0)
    return make_policy(PolicyConfig(hidden_size=16, lstm_layers=1), engine.features,
                       engine.action_names, engine.obs_shape)


def test_a_training_replay_is_one_whole_episode_read_back(tmp_path: Path):
    config = build_config("small_cardinal", [*SMALL, f"data_dir={tmp_path}", "run=r"])
    policy = small_policy(config)
    policy.train()
    weights = {k: v.clone() for k, v in policy.state_dict().items()}
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()

    path = record_training_replay(config, policy, epoch=4, agent_step=1024, run_dir=config.run_dir)

    assert path == tmp_path / "r" / "replays" / "epoch_000004.hgreplay"
    assert find_replays(config.run_dir) == [path]
    document = read_replay(path)
    assert len(document["steps"]) == 40 and document["end"] == "truncated"
    meta = document["meta"]
    assert (meta["source"], meta["recipe"], meta["epoch"], meta["agent_step"]) == ("train", "small_cardinal", 4, 1024)
    assert meta["policy"] == str(config.run_dir) and meta["seed"] == config.system.seed
    assert document["game"]["desync_episodes"] is False  # the full episode, as evaluated
    replay = ReplayState(document)
    assert len(replay) == 40
    assert len({tuple(step["a"]) for step in document["steps"]}) > 1  # the policy acted
    # The caller's policy, and torch's and numpy's generators, are as they were.
    assert policy.training
    assert all(torch.equal(v, weights[k]) for k, v in policy.state_dict().items())
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.random.get_state()[1].tolist() == numpy_state[1].tolist()
    # The same policy at the same epoch: the same replay (same map, same action samples).
    again = read_replay(record_training_replay(config, policy, epoch=4, agent_step=1024,
                                               run_dir=tmp_path / "again"))
    for doc in (document, again):
        doc["meta"].pop("created"), doc["meta"].pop("policy")
    assert again == document


def test_training_is_the_same_with_replays_on_or_off(tmp_path: Path):
    """What trainer.py does with logging.replay_interval (record after the epochs it is due),
    done around Trainer.train_epoch: the weights and the optimizer state stay bit for bit."""
    config = build_config("small_easy_shaped", [*SMALL, f"data_dir={tmp_path}", "run=r"])
    results = []
    for replays in (False, True):
        trainer = Trainer(config)
        for _ in range(3):
            trainer.train_epoch()
            if replays and replay_due(config, trainer.epoch):
                record_training_replay(config, trainer.policy, epoch=trainer.epoch,
                                       agent_step=trainer.agent_step, run_dir=config.run_dir)
        results.append((trainer.policy.state_dict(), trainer.optimizer.state_dict()["state"]))
    assert [p.name for p in find_replays(config.run_dir)] == ["epoch_000002.hgreplay"]
    (weights_off, adam_off), (weights_on, adam_on) = results
    for name, value in weights_off.items():
        assert torch.equal(value, weights_on[name]), name
    for key, state in adam_off.items():
        assert all(torch.equal(state[k], adam_on[key][k]) for k in state if torch.is_tensor(state[k]))


def test_a_training_replay_of_a_game_with_npcs_shows_them_playing(tmp_path: Path):
    """The NPC agents are played as in training (here scripted:noop), not by the learner, and
    the meta names them."""
    config = build_config("small_easy_shaped", [*SMALL, f"data_dir={tmp_path}", "run=r",
                                                "game.policy_agents_pct=0.5",
                                                "game.npc_policy_uri=scripted:noop"])
    npcs = Trainer(config).sides.npcs
    path = record_training_replay(config, small_policy(config), epoch=2, agent_step=512,
                                  run_dir=config.run_dir, npcs=npcs)
    document = read_replay(path)
    meta = document["meta"]
    assert (meta["npc_policy"], meta["npc_agents"]) == ("scripted:noop", [1])
    noop = document["actions"].index("noop_0")
    actions = [step["a"] for step in document["steps"]]
    assert all(a[1] == noop for a in actions)  # the NPC
    assert {a[0] for a in actions} != {noop}  # the learner acted


def test_a_training_replay_leaves_the_trainers_npcs_as_they_were(tmp_path: Path):
    # Self-play NPCs (recurrent: the initial policy until the run has a checkpoint), in the
    # middle of training: their recurrent state and their action generator are untouched.
    config = build_config("small_easy_shaped", [*SMALL, f"data_dir={tmp_path}", "run=r",
                                                "game.policy_agents_pct=0.5", "game.npc_policy_uri=self"])
    trainer = Trainer(config, checkpoints=CheckpointManager(config.run_dir))
    trainer.train_epoch()
    npcs = trainer.sides.npcs
    state, generator = [s.clone() for s in npcs.state], trainer.sides.generator.get_state()
    assert any(bool(s.abs().sum() > 0) for s in state)  # the check below can fail
    path = record_training_replay(config, trainer.policy, epoch=1, agent_step=trainer.agent_step,
                                  run_dir=config.run_dir, npcs=npcs)
    assert read_replay(path)["meta"]["npc_policy"] == "self (initial policy)"
    assert all(torch.equal(s, b) for s, b in zip(npcs.state, state))
    assert torch.equal(trainer.sides.generator.get_state(), generator)
