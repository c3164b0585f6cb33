"""PettingZoo and Gymnasium views of one HeartGrid env (the batched engine with num_envs=1).

For tools and libraries that speak those APIs; training uses the batched engine directly. For
all agents of many envs as one Stable-Baselines3 VecEnv, see vec_adapter.py.

- `HeartGridParallelEnv`: a PettingZoo `ParallelEnv`; agents are `agent_0 .. agent_{n-1}`,
  actions `Discrete(len(action_space))` flat indices (names in `action_names`).
- `HeartGridGymEnv`: a Gymnasium `Env` for ONE agent. It controls agent 0; in a game with more
  agents every other agent takes `noop_0` each step (a game without noop must then have
  `num_agents == 1`, else ValueError).

Observations: `obs_mode` picks "planes" (the engine's uint8 [F, H, W]), "float" (float32
[F, H, W] in [0, 1]) or "channels_last" (uint8 [H, W, F]); obs_modes.py says what each is for
and what Stable-Baselines3 makes of it. The default is "planes": it is what these adapters
returned before `obs_mode` existed and what HeartGrid's own policies read, so existing callers
see no change. Pass obs_mode="float" to train an SB3 / CleanRL MLP.

Episodes follow the API conventions rather than the engine's auto-reset: the step that ends an
episode returns its *final* observation, and the caller then calls `reset()`. `reset(seed=s)`
rebuilds the engine from seed s (so the same seed gives the same episode); `reset()` without a
seed continues with the next episode, which the engine has already started in place, or
restarts the current one if it had not ended.

Episode infos. On the step that ends an episode the info (for PettingZoo: every agent's info)
holds, under two keys:

- `info["episode"] = {"r": return, "l": length, "t": seconds}` exactly as Gymnasium's
  `RecordEpisodeStatistics` and SB3's `Monitor` write it: `r` the sum of the rewards this
  adapter returned to that agent over the episode (float), `l` the episode's steps (int), `t`
  the wall time since the episode began, rounded to 6 digits. SB3 reads these for its
  `rollout/ep_rew_mean` and `ep_len_mean`. SB3 wraps a plain env in `Monitor`, which replaces
  `info["episode"]` with its own identical measurement; Gymnasium's `RecordEpisodeStatistics`
  asserts that the key is free, so it is not needed here (or give it another `stats_key`).
- `info["heartgrid"] = {"mean_reward", "agent_stats", "game_stats"}`: HeartGrid's own episode
  record (engine.stats.EpisodeBatch) of the env: the episode reward averaged over the env's
  agents, and every stat name to a float (agent stats averaged over the env's agents). It has
  its own key so that wrappers that rewrite "episode" leave it alone.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from pettingzoo.utils.env import ParallelEnv

from heartgrid.config.game import GameConfig
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.obs_modes import ObsFormat
from heartgrid.engine.stats import EpisodeBatch

EPISODE_KEY = "episode"
HEARTGRID_KEY = "heartgrid"


class EpisodeTracker:
    """What `RecordEpisodeStatistics` measures, for every slot of a batched engine at once (host
    arrays): each slot's return, each env's length and start time. The step that ends an env's
    episode starts its next one, as the engine's auto-reset does."""

    def __init__(self, num_envs: int, num_agents: int):
        self.num_agents = num_agents
        self.returns = np.zeros(num_envs * num_agents, dtype=np.float64)
        self.lengths = np.zeros(num_envs, dtype=np.int64)
        self.starts = np.full(num_envs, time.perf_counter())

    def restart(self) -> None:
        """Every env begins an episode now."""
        self.returns[:] = 0
        self.lengths[:] = 0
        self.starts[:] = time.perf_counter()

    def step(self, rewards: np.ndarray) -> None:
        """Count one step of every env, with its slots' rewards [slots]."""
        self.returns += rewards
        self.lengths += 1

    def end(self, envs: np.ndarray, episodes: EpisodeBatch) -> dict[int, dict[str, Any]]:
        """The infos of every slot of `envs` (whose episodes ended on this step), by slot, with
        `episodes` their engine records; then the next episodes of those envs begin."""
        now = time.perf_counter()
        row = {env: i for i, env in enumerate(episodes.env_ids.tolist())}
        infos: dict[int, dict[str, Any]] = {}
        for env in envs.tolist():
            if env not in row:
                raise RuntimeError(f"env {env} ended an episode the engine did not record; was "
                                   "drain_episodes() called on the engine outside this adapter?")
            i, elapsed = row[env], round(float(now - self.starts[env]), 6)
            for slot in range(env * self.num_agents, (env + 1) * self.num_agents):
                infos[slot] = {
                    EPISODE_KEY: {"r": float(self.returns[slot]), "l": int(self.lengths[env]),
                                  "t": elapsed},
                    HEARTGRID_KEY: heartgrid_record(episodes, i),
                }
        slots = (envs[:, None] * self.num_agents + np.arange(self.num_agents)).reshape(-1)
        self.returns[slots] = 0
        self.lengths[envs] = 0
        self.starts[envs] = now
        return infos


def heartgrid_record(episodes: EpisodeBatch, i: int) -> dict[str, Any]:
    """Episode `i` of `episodes` as plain Python numbers (a fresh dict on every call)."""
    return {
        "mean_reward": float(episodes.rewards[i]),
        "agent_stats": {k: float(v[i]) for k, v in episodes.agent_stats.items()},
        "game_stats": {k: float(v[i]) for k, v in episodes.game_stats.items()},
    }


class _OneEnv:
    """The batched engine holding a single env, with the episode bookkeeping both views share."""

    def __init__(self, game: GameConfig, seed: int, device: str, obs_mode: str):
        self.game, self.device = game, device
        self.engine = self._build(seed)
        self.format = ObsFormat(obs_mode, game, self.engine.features, self.engine.action_space,
                                self.engine.device)
        self.observation_space = self.format.space
        self.action_space = spaces.Discrete(len(self.engine.action_space))
        self.action_names: list[str] = list(self.engine.action_space.names)
        self.tracker = EpisodeTracker(1, game.num_agents)
        self.episode_over = True  # the engine's obs already holds a fresh episode's start

    def _build(self, seed: int) -> BatchedEngine:
        engine = BatchedEngine(self.game, num_envs=1, device=self.device, seed=seed)
        engine.reset()
        return engine

    def reset(self, seed: int | None) -> np.ndarray:
        if seed is not None:
            self.engine = self._build(seed)
        elif not self.episode_over:
            self.engine.reset()
        self.episode_over = False
        self.tracker.restart()
        return self.format(self.engine.obs)

    def step(self, actions: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                dict[int, dict[str, Any]]]:
        """Observations, rewards, terminals, truncations of every agent, and the episode infos
        by agent (empty unless this step ended the episode)."""
        if self.episode_over:
            raise RuntimeError("the episode is over: call reset() before step()")
        engine = self.engine
        engine.step(torch.as_tensor(actions, dtype=torch.int64, device=engine.obs.device))
        rewards = engine.rewards.cpu().numpy().copy()
        terminals = engine.terminals.cpu().numpy().copy()
        truncations = engine.truncations.cpu().numpy().copy()
        self.tracker.step(rewards)
        self.episode_over = bool((terminals | truncations).any())
        obs = self.format(engine.final_obs if self.episode_over else engine.obs)
        infos: dict[int, dict[str, Any]] = {}
        if self.episode_over:
            infos = self.tracker.end(np.zeros(1, dtype=np.int64), engine.drain_episodes())
        return obs, rewards, terminals, truncations, infos


class HeartGridParallelEnv(ParallelEnv):
    metadata = {"name": "heartgrid_v0", "render_modes": []}

    def __init__(self, game: GameConfig, seed: int = 0, device: str = "cpu",
                 obs_mode: str = "planes"):
        self._env = _OneEnv(game, seed, device, obs_mode)
        self.possible_agents = [f"agent_{i}" for i in range(game.num_agents)]
        self.agents: list[str] = []
        self.action_names = self._env.action_names

    def observation_space(self, agent: str) -> spaces.Box:
        return self._env.observation_space  # one shared object, as the API test requires

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._env.action_space

    def reset(self, seed: int | None = None, options: dict | None = None):
        obs = self._env.reset(seed)
        self.agents = list(self.possible_agents)
        return {a: obs[i] for i, a in enumerate(self.agents)}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]):
        missing = sorted(set(self.agents) - set(actions))
        if missing:
            raise ValueError(f"every live agent needs an action; missing {missing}")
        obs, rewards, terminals, truncations, infos = self._env.step(
            [int(actions[a]) for a in self.possible_agents]
        )
        agents = self.agents
        result = (
            {a: obs[i] for i, a in enumerate(agents)},
            {a: float(rewards[i]) for i, a in enumerate(agents)},
            {a: bool(terminals[i]) for i, a in enumerate(agents)},
            {a: bool(truncations[i]) for i, a in enumerate(agents)},
            {a: infos.get(i, {}) for i, a in enumerate(agents)},
        )
        if self._env.episode_over:
            self.agents = []  # every agent of an env ends its episode on the same step
        return result


class HeartGridGymEnv(gymnasium.Env):
    metadata = {"render_modes": []}

    def __init__(self, game: GameConfig, seed: int = 0, device: str = "cpu",
                 obs_mode: str = "planes"):
        self._env = _OneEnv(game, seed, device, obs_mode)
        self.observation_space = self._env.observation_space
        self.action_space = self._env.action_space
        self.action_names = self._env.action_names
        self._others: list[int] = []
        if game.num_agents > 1:
            if "noop_0" not in self.action_names:
                raise ValueError(
                    f"HeartGridGymEnv controls agent 0 and gives the other {game.num_agents - 1} "
                    "agents noop_0, but this game has no noop action; enable "
                    "game.actions.noop or use a game with num_agents=1"
                )
            self._others = [self.action_names.index("noop_0")] * (game.num_agents - 1)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self._env.reset(seed)[0], {}

    def step(self, action: int):
        obs, rewards, terminals, truncations, infos = self._env.step([int(action), *self._others])
        return obs[0], float(rewards[0]), bool(terminals[0]), bool(truncations[0]), infos.get(0, {})
