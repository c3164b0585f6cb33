"""Engine-agnostic fixtures: the same scenario runs on the reference and the batched engine.

`make_engine(game, seed)` gives a `Harness` over one env of either engine. A harness only uses
what both engines expose to a trainer (observations, rewards, flags, final observations and
finished-episode stats), so a scenario asserts on behaviour, never on an engine's internals.
An agent's inventory is read from the centre cell of its own observation.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from heartgrid.config.game import GameConfig
from heartgrid.config.items import ITEMS
from heartgrid.engine.action_space import ActionSpace
from heartgrid.engine.features import FeatureRegistry
from heartgrid.engine.reference import EpisodeSummary, ReferenceEnv
from heartgrid.engine.rng import env_seed

# The batched engine's steps: `tensor` (eager tensor operations), `native` (the C++ step, CPU
# only) and `compiled` (torch.compile).
ENGINES = ("reference", "tensor", "native", "compiled")
STEPS = {"tensor": {"native": False}, "native": {"native": True}, "compiled": {"compile": True}}
# The batched engine's device; `HEARTGRID_TEST_DEVICE=cuda` runs the scenarios on a GPU.
DEVICE = os.environ.get("HEARTGRID_TEST_DEVICE", "cpu")


@dataclass
class StepResult:
    obs: np.ndarray  # uint8 [agents, F, H, W], already the next episode's when the episode ended
    rewards: np.ndarray  # float32 [agents]
    terminals: np.ndarray
    truncations: np.ndarray
    final_obs: np.ndarray | None  # last observation of an episode that ended this step
    episode: EpisodeSummary | None  # stats of an episode that ended this step


class Harness(ABC):
    """One env of an engine; actions are given per agent as names (`"move_0"`), flat indices
    or (type, arg) pairs (one form per step, as the engines take them)."""

    name: str

    def __init__(self, game: GameConfig):
        self.game = game
        self.action_space = ActionSpace.from_game(game)
        self.features = FeatureRegistry.default()
        self.num_agents = game.num_agents
        self.obs: np.ndarray

    def encode(self, actions: list) -> np.ndarray:
        if len(actions) != self.num_agents:
            raise ValueError(f"give one action per agent ({self.num_agents}), got {actions}")
        if any(isinstance(a, tuple) for a in actions):
            pairs = [a if isinstance(a, tuple) else self.action_space.flat[self.action_space.index(a)]
                     for a in actions]
            return np.asarray(pairs, dtype=np.int64)
        return np.asarray([self.action_space.index(a) if isinstance(a, str) else a for a in actions],
                          dtype=np.int64)

    @abstractmethod
    def reset(self) -> np.ndarray: ...

    @abstractmethod
    def step(self, actions: list) -> StepResult: ...

    def run(self, script: list[list]) -> list[StepResult]:
        return [self.step(actions) for actions in script]

    # Reading observations --------------------------------------------------------------------

    def see(self, agent: int, dr: int, dc: int, feature: str, obs: np.ndarray | None = None) -> int:
        """Feature value of the cell (dr, dc) away from `agent` in its window."""
        obs = self.obs if obs is None else obs
        ch, cw = self.game.obs_height // 2, self.game.obs_width // 2
        return int(obs[agent, self.features[feature].id, ch + dr, cw + dc])

    def inventory(self, agent: int, obs: np.ndarray | None = None) -> dict[str, int]:
        counts = {item: self.see(agent, 0, 0, f"inv:{item}", obs) for item in ITEMS}
        return {item: n for item, n in counts.items() if n}


class ReferenceHarness(Harness):
    name = "reference"

    def __init__(self, game: GameConfig, seed: int):
        super().__init__(game)
        self.env = ReferenceEnv(game, env_seed(seed, 0))

    def reset(self) -> np.ndarray:
        self.obs = self.env.reset()
        return self.obs

    def step(self, actions: list) -> StepResult:
        obs, rewards, terminals, truncations, info = self.env.step(self.encode(actions))
        self.obs = obs
        return StepResult(obs, rewards, terminals, truncations, info["final_obs"], info["episode"])


class BatchedHarness(Harness):
    name = "batched"

    def __init__(self, game: GameConfig, seed: int, step: str = "tensor"):
        super().__init__(game)
        from heartgrid.engine.batched import BatchedEngine

        self.engine = BatchedEngine(game, num_envs=1, device=DEVICE, seed=seed, **STEPS[step])
        assert self.engine.step_kind == step
        assert list(self.engine.action_space.names) == self.action_space.names

    def reset(self) -> np.ndarray:
        self.engine.reset()
        self.obs = self.engine.obs.cpu().numpy().copy()
        return self.obs

    def step(self, actions: list) -> StepResult:
        engine = self.engine
        engine.step(torch.as_tensor(self.encode(actions)))
        self.obs = engine.obs.cpu().numpy().copy()
        terminals = engine.terminals.cpu().numpy().copy()
        truncations = engine.truncations.cpu().numpy().copy()
        done = bool((terminals | truncations).any())
        final_obs = engine.final_obs.cpu().numpy().copy() if done else None
        batch = engine.drain_episodes()
        episode = None
        if len(batch.lengths):
            episode = EpisodeSummary(
                reward=float(batch.rewards[0]),
                length=int(batch.lengths[0]),
                agent_stats={k: float(v[0]) for k, v in batch.agent_stats.items()},
                game_stats={k: float(v[0]) for k, v in batch.game_stats.items()},
            )
        rewards = engine.rewards.cpu().numpy().copy()
        return StepResult(self.obs, rewards, terminals, truncations, final_obs, episode)


@pytest.fixture(params=ENGINES)
def make_engine(request):
    """make_engine(game, seed=0) -> a reset Harness of the parametrized engine."""

    def make(game: GameConfig, seed: int = 0) -> Harness:
        if request.param == "reference":
            harness = ReferenceHarness(game, seed)
        elif request.param == "native" and DEVICE != "cpu":
            pytest.skip("the native step runs on a CPU")
        else:
            harness = BatchedHarness(game, seed, request.param)
        harness.reset()
        return harness

    return make
