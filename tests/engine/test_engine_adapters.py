"""The PettingZoo and Gymnasium adapters pass their libraries' API checks, end episodes the way
those APIs expect (final observation on the last step, then reset), report episodes with
Gymnasium's `r`/`l`/`t` keys, and offer observation modes that other libraries read correctly.
(Training Stable-Baselines3 through them: test_engine_sb3.py.)"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers import RecordEpisodeStatistics
from pettingzoo.test import parallel_api_test, parallel_seed_test

from heartgrid.config.game import GameConfig
from heartgrid.engine.adapters import HeartGridGymEnv, HeartGridParallelEnv
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.features import FeatureRegistry
from heartgrid.engine.obs_modes import OBS_MODES, ObsFormat, feature_maxima
from heartgrid.engine.reference import ReferenceEnv
from heartgrid.engine.rng import env_seed
from heartgrid.recipes import build_config, get_recipe
from heartgrid.recipes.small import small_game


def short_game(num_agents: int = 2, max_steps: int = 12) -> GameConfig:
    game = small_game()
    game.map.room.agents = num_agents
    game.num_agents = num_agents
    game.max_steps = max_steps
    game.desync_episodes = False
    return game


def penalised_game(max_steps: int = 24) -> GameConfig:
    """small_easy_shaped with a penalty for failed moves, so that random play earns returns
    that are not 0 and differ between agents."""
    return build_config("small_easy_shaped", [f"game.max_steps={max_steps}", "system.device=cpu",
                                              "game.actions.move.failure_penalty=0.25"]).game


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
    assert infos["agent_0"]["episode"]["l"] == 3
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
        assert info["heartgrid"]["agent_stats"][stat] == ref_info["episode"].agent_stats[stat]


def test_gym_env_refuses_a_multi_agent_game_without_noop():
    game = get_recipe("navigation").fn("cpu").game
    with pytest.raises(ValueError, match="noop"):
        HeartGridGymEnv(game)


# ---- episode infos ---------------------------------------------------------------------------

def test_gym_env_reports_episodes_as_record_episode_statistics_does():
    # Gymnasium's own wrapper, under another key, measures the same episodes beside ours.
    env = RecordEpisodeStatistics(HeartGridGymEnv(penalised_game(), seed=3), stats_key="gym")
    env.action_space.seed(3)
    env.reset(seed=3)
    move = env.unwrapped.action_names.index("move_0")  # half the time: walks into walls
    returns, t = [], 0
    for _ in range(3):
        done = False
        while not done:
            t += 1
            action = move if t % 2 else env.action_space.sample()
            _, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        episode, theirs = info["episode"], info["gym"]
        assert set(episode) == {"r", "l", "t"}
        assert type(episode["r"]) is float and type(episode["l"]) is int and type(episode["t"]) is float
        assert episode["r"] == theirs["r"] and episode["l"] == theirs["l"]
        assert episode["t"] == round(episode["t"], 6) and 0 <= episode["t"] <= theirs["t"] + 0.05
        assert set(info["heartgrid"]) == {"mean_reward", "agent_stats", "game_stats"}
        assert "action.move.failed" in info["heartgrid"]["agent_stats"]
        returns.append(episode["r"])
        env.reset()
    assert any(r < 0 for r in returns)  # the failure penalty was paid: r is not trivially 0


def test_parallel_env_reports_each_agents_own_return():
    env = HeartGridParallelEnv(penalised_game(max_steps=16), seed=2)
    rng = np.random.default_rng(2)
    env.reset(seed=2)
    sums = {a: 0.0 for a in env.agents}
    while env.agents:
        _, rewards, _, _, infos = env.step({a: int(rng.integers(env.action_space(a).n)) for a in env.agents})
        for a, r in rewards.items():
            sums[a] += r
        if env.agents:
            assert infos == {a: {} for a in env.agents}  # nothing until the episode ends
    assert len(set(sums.values())) > 1
    for a, total in sums.items():
        assert infos[a]["episode"]["r"] == pytest.approx(total)
        assert infos[a]["episode"]["l"] == infos["agent_0"]["episode"]["l"]
    assert infos["agent_0"]["heartgrid"]["mean_reward"] == pytest.approx(np.mean(list(sums.values())))
    assert infos["agent_0"]["heartgrid"] is not infos["agent_1"]["heartgrid"]


# ---- observation modes -----------------------------------------------------------------------

def test_obs_modes_are_the_same_planes_in_other_forms():
    game = short_game(max_steps=6)
    envs = {mode: HeartGridGymEnv(game, seed=4, obs_mode=mode) for mode in OBS_MODES}
    assert HeartGridGymEnv(game).observation_space == envs["planes"].observation_space  # default
    maxima = feature_maxima(game, FeatureRegistry.default(), BatchedEngine(game, 1).action_space)
    F, H, W = len(FeatureRegistry.default()), game.obs_height, game.obs_width
    spaces = {mode: env.observation_space for mode, env in envs.items()}
    assert (spaces["planes"].shape, spaces["planes"].dtype, spaces["planes"].high.max()) == ((F, H, W), np.uint8, 255)
    assert (spaces["float"].shape, spaces["float"].dtype) == ((F, H, W), np.float32)
    assert spaces["float"].low.min() == 0 and spaces["float"].high.max() == 1
    assert (spaces["channels_last"].shape, spaces["channels_last"].dtype) == ((H, W, F), np.uint8)
    obs = {mode: env.reset(seed=4)[0] for mode, env in envs.items()}
    rotate = envs["planes"].action_names.index("rotate_3")
    for _ in range(6):
        assert all(spaces[mode].contains(o) for mode, o in obs.items())
        np.testing.assert_array_equal(obs["float"], obs["planes"] / maxima[:, None, None])
        np.testing.assert_array_equal(obs["channels_last"], obs["planes"].transpose(1, 2, 0))
        obs = {mode: env.step(rotate)[0] for mode, env in envs.items()}
    check_env(HeartGridGymEnv(short_game(num_agents=1), obs_mode="float"), skip_render_check=True)


@pytest.mark.parametrize("recipe", ["small_cardinal", "navigation_maze", "arena_combat", "arena_advanced"])
def test_float_obs_stay_within_their_box(recipe):
    """The per-feature maxima are true bounds (random play never exceeds them) and tight ones
    for small-range planes (orientation reaches 1, not 3 / 255)."""
    game = build_config(recipe, ["system.device=cpu"]).game
    engine = BatchedEngine(game, num_envs=2, seed=0)
    engine.reset()
    fmt = ObsFormat("float", game, engine.features, engine.action_space, engine.device)
    generator = torch.Generator().manual_seed(0)
    high = np.zeros(len(engine.features), dtype=np.float32)
    for _ in range(100):
        engine.step(torch.randint(0, len(engine.action_space), (engine.num_slots,), generator=generator))
        obs = fmt(engine.obs)
        assert obs.min() >= 0 and obs.max() <= 1
        high = np.maximum(high, obs.max(axis=(0, 2, 3)))
    assert high[engine.features["agent:orientation"].id] == 1


@pytest.mark.parametrize("make", [HeartGridGymEnv, HeartGridParallelEnv])
def test_an_unknown_obs_mode_names_the_valid_ones(make):
    with pytest.raises(ValueError, match=r"'flaot'.*'planes', 'float', 'channels_last'.*did you mean 'float'"):
        make(short_game(), obs_mode="flaot")


def test_the_adapters_import_without_stable_baselines3():
    # SB3 is an optional extra: only vec_adapter.py may need it (a None entry blocks an import).
    code = ("import sys; sys.modules['stable_baselines3'] = None\n"
            "import heartgrid.engine.adapters, heartgrid.engine.obs_modes\n"
            "try:\n    import heartgrid.engine.vec_adapter\nexcept ImportError:\n    print('blocked')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "blocked"
