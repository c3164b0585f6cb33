"""The PettingZoo and Gymnasium adapters pass their libraries' API checks and end episodes
the way those APIs expect (final observation on the last step, then reset)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test

from heartgrid.config.game import GameConfig
from heartgrid.engine.adapters import HeartGridGymEnv, HeartGridParallelEnv
from heartgrid.engine.features import FeatureRegistry
from heartgrid.engine.reference import ReferenceEnv
from heartgrid.engine.rng import env_seed
from heartgrid.recipes import get_recipe
from heartgrid.recipes.small import small_game


def short_game(num_agents: int = 2, max_steps: int = 12) -> GameConfig:
    game = small_game()
    game.map.room.agents = num_agents
    game.num_agents = num_agents
    game.max_steps = max_steps
    game.desync_episodes = False
    return game


def completion(obs: np.ndarray, game: GameConfig) -> int:
    f = FeatureRegistry.default()["episode_completion_pct"].id
    return int(obs[f, game.obs_height // 2, game.obs_width // 2])


def test_parallel_env_passes_the_pettingzoo_api_test():
    parallel_api_test(HeartGridParallelEnv(short_game()), num_cycles=30)


def test_parallel_env_is_deterministic_under_a_seed():
    parallel_seed_test(lambda: HeartGridParallelEnv(short_game()), num_cycles=20)


def test_gym_env_passes_the_gymnasium_env_checker():
    check_env(HeartGridGymEnv(short_game(num_agents=1)), skip_render_check=True)


def test_parallel_env_ends_with_the_final_observation_then_continues():
    game = short_game(max_steps=3)
    env = HeartGridParallelEnv(game, seed=5)
    reference = ReferenceEnv(game, env_seed(5, 0))
    obs, _ = env.reset()
    expected = reference.reset()
    noop = env.action_names.index("noop_0")
    for t in range(3):
        assert all(np.array_equal(obs[f"agent_{i}"], expected[i]) for i in range(2))
        obs, rewards, terms, truncs, infos = env.step({a: noop for a in env.agents})
        expected, _, _, _, info = reference.step([noop, noop])
    assert all(truncs.values()) and not any(terms.values())
    assert env.agents == []
    assert all(np.array_equal(obs[f"agent_{i}"], info["final_obs"][i]) for i in range(2))
    assert completion(obs["agent_0"], game) == 255
    assert infos["agent_0"]["episode"]["length"] == 3
    # reset() without a seed goes on with episode 1, as the reference engine does.
    obs, _ = env.reset()
    assert env.agents == ["agent_0", "agent_1"]
    assert all(np.array_equal(obs[f"agent_{i}"], expected[i]) for i in range(2))
    assert completion(obs["agent_0"], game) == 0
    with pytest.raises(ValueError, match="missing"):
        env.step({"agent_0": noop})


def test_gym_env_drives_agent_0_and_others_noop():
    game = short_game(num_agents=2, max_steps=4)
    env = HeartGridGymEnv(game, seed=1)
    reference = ReferenceEnv(game, env_seed(1, 0))
    obs, _ = env.reset()
    assert np.array_equal(obs, reference.reset()[0])
    noop = env.action_names.index("noop_0")
    for action in (env.action_names.index("rotate_2"), env.action_names.index("move_0"), noop, noop):
        obs, reward, terminated, truncated, info = env.step(action)
        _, rewards, _, _, ref_info = reference.step([action, noop])
        assert reward == pytest.approx(float(rewards[0]), abs=1e-6)
    assert truncated and not terminated
    assert np.array_equal(obs, ref_info["final_obs"][0])
    for stat in ("action.noop.success", "action.rotate.success", "action.move.success"):
        assert info["episode"]["agent_stats"][stat] == ref_info["episode"].agent_stats[stat]


def test_gym_env_refuses_a_multi_agent_game_without_noop():
    game = get_recipe("navigation").fn("cpu").game
    with pytest.raises(ValueError, match="noop"):
        HeartGridGymEnv(game)
