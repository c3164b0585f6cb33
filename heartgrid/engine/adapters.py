"""PettingZoo and Gymnasium views of one HeartGrid env (the batched engine with num_envs=1).

For tools and libraries that speak those APIs; training uses the batched engine directly.

- `HeartGridParallelEnv`: a PettingZoo `ParallelEnv`; agents are `agent_0 .. agent_{n-1}`,
  observations uint8 [F, H, W] (the feature planes of `engine.features`), actions
  `Discrete(len(action_space))` flat indices (names in `action_names`).
- `HeartGridGymEnv`: a Gymnasium `Env` for ONE agent. It controls agent 0; in a game with more
  agents every other agent takes `noop_0` each step (a game without noop must then have
  `num_agents == 1`, else ValueError).

Episodes follow the API conventions rather than the engine's auto-reset: the step that ends an
episode returns its *final* observation (and the episode's stats in `info["episode"]`), and the
caller then calls `reset()`. `reset(seed=s)` rebuilds the engine from seed s (so the same seed
gives the same episode); `reset()` without a seed continues with the next episode, which the
engine has already started in place, or restarts the current one if it had not ended.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from pettingzoo.utils.env import ParallelEnv

from heartgrid.config.game import GameConfig
from heartgrid.engine.batched import BatchedEngine


class _OneEnv:
    """The batched engine holding a single env, with the episode bookkeeping both views share."""

    def __init__(self, game: GameConfig, seed: int, device: str):
        self.game, self.device = game, device
        self.engine = self._build(seed)
        self.observation_space = spaces.Box(0, 255, shape=self.engine.obs_shape, dtype=np.uint8)
        self.action_space = spaces.Discrete(len(self.engine.action_space))
        self.action_names: list[str] = list(self.engine.action_space.names)
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
        return self.engine.obs.cpu().numpy().copy()

    def step(self, actions: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self.episode_over:
            raise RuntimeError("the episode is over: call reset() before step()")
        engine = self.engine
        engine.step(torch.as_tensor(actions, dtype=torch.int64, device=engine.obs.device))
        terminals = engine.terminals.cpu().numpy().copy()
        truncations = engine.truncations.cpu().numpy().copy()
        self.episode_over = bool((terminals | truncations).any())
        obs = (engine.final_obs if self.episode_over else engine.obs).cpu().numpy().copy()
        info: dict[str, Any] = {}
        episodes = engine.drain_episodes()
        if len(episodes):
            info["episode"] = {
                "reward": float(episodes.rewards[0]),
                "length": int(episodes.lengths[0]),
                "agent_stats": {k: float(v[0]) for k, v in episodes.agent_stats.items()},
                "game_stats": {k: float(v[0]) for k, v in episodes.game_stats.items()},
            }
        return obs, engine.rewards.cpu().numpy().copy(), terminals, truncations, info


class HeartGridParallelEnv(ParallelEnv):
    metadata = {"name": "heartgrid_v0", "render_modes": []}

    def __init__(self, game: GameConfig, seed: int = 0, device: str = "cpu"):
        self._env = _OneEnv(game, seed, device)
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
        obs, rewards, terminals, truncations, info = self._env.step(
            [int(actions[a]) for a in self.possible_agents]
        )
        agents = self.agents
        result = (
            {a: obs[i] for i, a in enumerate(agents)},
            {a: float(rewards[i]) for i, a in enumerate(agents)},
            {a: bool(terminals[i]) for i, a in enumerate(agents)},
            {a: bool(truncations[i]) for i, a in enumerate(agents)},
            {a: dict(info) for a in agents},
        )
        if self._env.episode_over:
            self.agents = []  # every agent of an env ends its episode on the same step
        return result


class HeartGridGymEnv(gymnasium.Env):
    metadata = {"render_modes": []}

    def __init__(self, game: GameConfig, seed: int = 0, device: str = "cpu"):
        self._env = _OneEnv(game, seed, device)
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
        obs, rewards, terminals, truncations, info = self._env.step([int(action), *self._others])
        return obs[0], float(rewards[0]), bool(terminals[0]), bool(truncations[0]), info
