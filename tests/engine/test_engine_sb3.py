"""Stable-Baselines3 through HeartGrid's adapters, with no user wrappers: how SB3 reads each
observation mode, PPO on the Gymnasium adapter, and `HeartGridVecEnv` (all agents of a batch
of envs as one SB3 VecEnv) step by step against the engine and under PPO."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.logger import KVWriter, Logger  # noqa: E402
from stable_baselines3.common.monitor import Monitor  # noqa: E402
from stable_baselines3.common.vec_env import VecTransposeImage, is_vecenv_wrapped  # noqa: E402

from heartgrid.config.game import GameConfig  # noqa: E402
from heartgrid.engine.adapters import HeartGridGymEnv  # noqa: E402
from heartgrid.engine.batched import BatchedEngine  # noqa: E402
from heartgrid.engine.vec_adapter import HeartGridVecEnv  # noqa: E402
from heartgrid.recipes import build_config  # noqa: E402

# A few thousand steps of PPO per test: small rollouts and few epochs keep each under ~10 s.
PPO_ARGS = dict(n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu", verbose=0)


def tiny_game(max_steps: int = 64, *overrides: str) -> GameConfig:
    return build_config("small_easy_shaped",
                        [f"game.max_steps={max_steps}", "system.device=cpu", *overrides]).game


class Records(KVWriter):
    """Keeps every dump of an SB3 logger."""

    def __init__(self) -> None:
        self.dumps: list[dict] = []

    def write(self, key_values, key_excluded, step=0) -> None:
        self.dumps.append(dict(key_values))


class EndedInfos(BaseCallback):
    """Keeps the infos of the sub-envs whose episode ended, as the rollout saw them."""

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[dict] = []

    def _on_step(self) -> bool:
        self.infos += [info for info, done in zip(self.locals["infos"], self.locals["dones"]) if done]
        return True


def learn(model: PPO, steps: int) -> tuple[Records, EndedInfos]:
    torch.set_num_threads(1)  # PPO's constructor does not, and conftest restores it afterwards
    records, ended = Records(), EndedInfos()
    model.set_logger(Logger(folder=None, output_formats=[records]))
    model.learn(total_timesteps=steps, callback=ended, log_interval=1)
    return records, ended


def assert_episodes_logged(model: PPO, records: Records) -> None:
    """SB3 filled its episode buffer and logged rollout/ep_rew_mean and ep_len_mean from it."""
    buffer = list(model.ep_info_buffer)
    assert buffer and all({"r", "l", "t"} <= set(e) for e in buffer)
    logged = [d for d in records.dumps if "rollout/ep_rew_mean" in d]
    assert logged and "rollout/ep_len_mean" in logged[-1]
    assert logged[-1]["rollout/ep_rew_mean"] == pytest.approx(np.mean([e["r"] for e in buffer]))
    assert logged[-1]["rollout/ep_len_mean"] == pytest.approx(np.mean([e["l"] for e in buffer]))


# ---- how SB3 reads each observation mode (as obs_modes.py documents) ---------------------------

@pytest.mark.parametrize("obs_mode, transposed, shape", [
    ("planes", True, (7, 21, 7)),  # taken for a channels-last image: the transpose
    ("float", False, (21, 7, 7)),  # a plain vector
    ("channels_last", False, (7, 7, 21)),  # taken for a channels-first image of 7 channels
])
def test_sb3_reads_each_obs_mode_as_documented(obs_mode, transposed, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Treating image space as channels-last" for planes
        model = PPO("MlpPolicy", HeartGridGymEnv(tiny_game(), obs_mode=obs_mode), **PPO_ARGS)
    assert is_vecenv_wrapped(model.get_env(), VecTransposeImage) == transposed
    assert model.observation_space.shape == shape


# ---- PPO on the Gymnasium adapter --------------------------------------------------------------

def test_sb3_ppo_trains_on_the_gym_env_and_keeps_heartgrid_stats():
    model = PPO("MlpPolicy", HeartGridGymEnv(tiny_game(), seed=0, obs_mode="float"), **PPO_ARGS)
    records, ended = learn(model, 2048)
    assert model.get_env().env_is_wrapped(Monitor) == [True]  # SB3's own wrapper, not ours
    assert_episodes_logged(model, records)
    # Monitor rewrote info["episode"] with its own r/l/t; HeartGrid's record survived beside it.
    assert len(ended.infos) >= 20
    for info in ended.infos:
        assert {"r", "l", "t"} <= set(info["episode"])
        assert "heart.get" in info["heartgrid"]["agent_stats"]


# ---- HeartGridVecEnv ---------------------------------------------------------------------------

def test_vec_env_is_the_engine_with_sb3_auto_reset_semantics():
    game = tiny_game(10, "game.actions.move.failure_penalty=0.25")
    venv = HeartGridVecEnv(game, num_envs=3, seed=4, obs_mode="planes")
    engine = BatchedEngine(game, num_envs=3, seed=4)
    engine.reset()
    A, S = game.num_agents, 3 * game.num_agents
    assert venv.num_envs == S and venv.observation_space.shape == engine.obs_shape
    obs = venv.reset()
    assert obs.shape == (S, *engine.obs_shape) and obs.dtype == np.uint8
    np.testing.assert_array_equal(obs, engine.obs.numpy())
    rng = np.random.default_rng(0)
    returns, lengths, episode_returns = np.zeros(S), np.zeros(3, dtype=int), []
    for _ in range(30):
        actions = rng.integers(0, venv.action_space.n, S)
        obs, rewards, dones, infos = venv.step(actions)
        engine.step(torch.as_tensor(actions))
        np.testing.assert_array_equal(obs, engine.obs.numpy())  # already the next episode's
        np.testing.assert_array_equal(rewards, engine.rewards.numpy())
        np.testing.assert_array_equal(dones, (engine.terminals | engine.truncations).numpy())
        returns += rewards
        lengths += 1
        episodes = engine.drain_episodes()
        row = {env: i for i, env in enumerate(episodes.env_ids.tolist())}
        for slot in range(S):
            env, info = slot // A, infos[slot]
            if not dones[slot]:
                assert info == {}
                continue
            episode_returns.append(info["episode"]["r"])
            np.testing.assert_array_equal(info["terminal_observation"], engine.final_obs[slot].numpy())
            assert info["TimeLimit.truncated"] is True  # HeartGrid episodes end by time
            assert info["episode"]["r"] == pytest.approx(returns[slot]) and info["episode"]["l"] == lengths[env]
            assert info["episode"]["t"] >= 0
            stats = info["heartgrid"]["agent_stats"]
            assert stats == {k: float(v[row[env]]) for k, v in episodes.agent_stats.items()}
            returns[slot] = 0
            if slot % A == A - 1:
                lengths[env] = 0
    # 30 steps of episodes of at most 10: every env ended 3 or more (the first one shorter).
    assert len(episode_returns) >= 3 * 3 * A and any(r != 0 for r in episode_returns)


def test_vec_env_seeding_attributes_and_errors():
    game = tiny_game(10)
    venv = HeartGridVecEnv(game, num_envs=2, seed=0)
    assert venv.obs_mode == "float" and venv.observation_space.dtype == np.float32  # the default
    first = venv.reset()
    assert first.shape == (4, 21, 7, 7) and first.flags["C_CONTIGUOUS"]
    venv.seed(7)  # applies at the next reset, from _seeds[0]
    seeded = venv.reset()
    other = HeartGridVecEnv(game, num_envs=2, seed=7).reset()
    np.testing.assert_array_equal(seeded, other)
    assert not np.array_equal(seeded, first)
    venv.step(np.zeros(4, dtype=np.int64))
    np.testing.assert_array_equal(venv.reset(), seeded)  # no seed: every env starts over
    assert venv.get_attr("render_mode") == [None] * 4
    assert venv.get_attr("action_space", indices=[1, 3]) == [venv.action_space] * 2
    assert venv.has_attr("action_names") and not venv.has_attr("engine")
    assert venv.env_is_wrapped(Monitor) == [False] * 4
    with pytest.raises(AttributeError, match="slots of one engine"):
        venv.set_attr("render_mode", "human")
    with pytest.raises(AttributeError, match="no method 'render'"):
        venv.env_method("render")
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        venv.step_async(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="did you mean 'channels_last'"):
        HeartGridVecEnv(game, num_envs=1, obs_mode="channel_last")


def test_sb3_ppo_trains_on_the_vec_env_and_logs_its_episodes():
    venv = HeartGridVecEnv(tiny_game(), num_envs=4, seed=0)  # 8 sub-envs
    model = PPO("MlpPolicy", venv, **PPO_ARGS)
    assert model.get_env() is venv  # no Monitor, VecMonitor or transpose in between
    records, ended = learn(model, 4096)
    assert_episodes_logged(model, records)  # read straight from infos[i]["episode"]
    assert len(model.ep_info_buffer) >= 40
    assert all("heart.get" in info["heartgrid"]["agent_stats"] for info in ended.infos)
