"""A tiny deterministic engine and recurrent policy that follow the engine and policy
interfaces, so the trainer's mechanics can be tested exactly and fast, without the game.

FakeEngine: every env runs episodes of `episode_length` steps (env e starts at step e, so
episodes end at different times). The observation encodes the step counter t (plane 0), the
agent (plane 1) and the env (plane 2). Action 1 pays reward 1, others 0. An episode ends by
truncation (time_limit="truncate") or as terminal, reporting its final observation, which is
the observation at t = episode_length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from heartgrid.config.game import GameConfig, MapConfig, RandomRoomConfig
from heartgrid.config.run import RunConfig
from heartgrid.config.trainer import TrainerConfig
from heartgrid.policies.base import Policy

OBS_SHAPE = (3, 2, 2)

# Devices the trainer's mechanics are tested on: CUDA too where the machine has it.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@dataclass
class FakeActionSpace:
    names: list[str] = field(default_factory=lambda: ["noop_0", "good_0", "bad_0"])


@dataclass
class FakeEpisodes:
    env_ids: Tensor
    task_ids: Tensor
    rewards: Tensor
    lengths: Tensor
    agent_stats: dict[str, Tensor]
    game_stats: dict[str, Tensor]


class FakeEngine:
    def __init__(self, num_envs: int, num_agents: int, episode_length: int, time_limit: str = "truncate",
                 device: str = "cpu"):
        self.num_envs, self.num_agents = num_envs, num_agents
        self.num_slots = num_envs * num_agents
        self.episode_length = episode_length
        self.time_limit = time_limit
        self.device = torch.device(device)
        self.obs_shape = OBS_SHAPE
        self.action_space = FakeActionSpace()
        self.features = None
        slots = self.num_slots
        self.obs = torch.zeros(slots, *OBS_SHAPE, dtype=torch.uint8, device=self.device)
        self.final_obs = torch.zeros_like(self.obs)
        self.rewards = torch.zeros(slots, device=self.device)
        self.terminals = torch.zeros(slots, dtype=torch.bool, device=self.device)
        self.truncations = torch.zeros(slots, dtype=torch.bool, device=self.device)
        self.truncated_envs = np.empty(0, dtype=np.int64)  # host copy, as BatchedEngine keeps it
        self.env_of_slot = torch.arange(slots, device=self.device) // num_agents
        self.agent_of_slot = torch.arange(slots, device=self.device) % num_agents
        self.t = torch.arange(num_envs, device=self.device) % episode_length
        self.episode_reward = torch.zeros(slots, device=self.device)
        self.good_actions = torch.zeros(slots, device=self.device)
        self.current_task = [0] * num_envs
        self.next_task = [0] * num_envs
        self.finished: list[tuple[int, int, float, int, float]] = []
        self.steps_taken = 0

    def make_obs(self, t: Tensor) -> Tensor:
        """Observations of all slots for per-env step counters `t` [envs]."""
        obs = torch.zeros(self.num_slots, *OBS_SHAPE, dtype=torch.uint8, device=self.device)
        obs[:, 0] = t[self.env_of_slot].to(torch.uint8)[:, None, None]
        obs[:, 1] = (self.agent_of_slot + 1).to(torch.uint8)[:, None, None]
        obs[:, 2] = (self.env_of_slot + 1).to(torch.uint8)[:, None, None]
        return obs

    def reset(self) -> None:
        self.obs.copy_(self.make_obs(self.t))

    def step(self, actions: Tensor) -> None:
        self.steps_taken += 1
        self.rewards.copy_((actions == 1).float())
        self.episode_reward += self.rewards
        self.good_actions += (actions == 1).float()
        self.t += 1
        ended_env = self.t >= self.episode_length
        ended = ended_env[self.env_of_slot]
        self.final_obs.copy_(torch.where(ended[:, None, None, None], self.make_obs(self.t), 0))
        self.terminals.copy_(ended & (self.time_limit == "terminal"))
        self.truncations.copy_(ended & (self.time_limit == "truncate"))
        truncated_envs = ended_env.nonzero().flatten().cpu().numpy()
        self.truncated_envs = truncated_envs if self.time_limit == "truncate" else truncated_envs[:0]
        for env in ended_env.nonzero().flatten().tolist():
            rows = self.env_of_slot == env
            self.finished.append((env, self.current_task[env], self.episode_reward[rows].mean().item(),
                                  int(self.t[env]), self.good_actions[rows].mean().item()))
            self.current_task[env] = self.next_task[env]
        self.episode_reward[ended] = 0
        self.good_actions[ended] = 0
        self.t[ended_env] = 0
        self.obs.copy_(self.make_obs(self.t))

    def drain_episodes(self) -> FakeEpisodes:
        env, task, reward, length, good = (list(c) for c in zip(*self.finished)) if self.finished else ([],) * 5
        self.finished = []
        return FakeEpisodes(
            env_ids=torch.tensor(env, dtype=torch.long),
            task_ids=torch.tensor(task, dtype=torch.long),
            rewards=torch.tensor(reward, dtype=torch.float32),
            lengths=torch.tensor(length, dtype=torch.long),
            agent_stats={"heart.get": torch.tensor(good, dtype=torch.float32)},
            game_stats={"episode.length": torch.tensor(length, dtype=torch.float32)},
        )

    def set_next_task(self, env_ids: list[int], games: list, task_ids: list[int]) -> None:
        for env, task in zip(env_ids, task_ids):
            self.next_task[env] = task

    def state_dict(self) -> dict:
        return {"t": self.t.clone(), "episode_reward": self.episode_reward.clone(),
                "good_actions": self.good_actions.clone(), "obs": self.obs.clone(),
                "current_task": list(self.current_task), "next_task": list(self.next_task)}

    def load_state_dict(self, state: dict) -> None:
        self.t.copy_(state["t"])
        self.episode_reward.copy_(state["episode_reward"])
        self.good_actions.copy_(state["good_actions"])
        self.obs.copy_(state["obs"])
        self.current_task, self.next_task = list(state["current_task"]), list(state["next_task"])


class TinyPolicy(nn.Module):
    """Linear encoder → GRU cell → actor and critic. With `value_from_obs` the critic reads the
    encoded observation instead of the recurrent state, so a test can compute V(obs) alone."""

    def __init__(self, num_actions: int = 3, hidden: int = 8, value_from_obs: bool = False, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.hidden = hidden
        self.value_from_obs = value_from_obs
        self.encoder = nn.Linear(int(torch.tensor(OBS_SHAPE).prod()), hidden)
        self.cell = nn.GRUCell(hidden, hidden)
        self.actor = nn.Linear(hidden, num_actions)
        self.critic = nn.Linear(hidden, 1)

    def spec(self) -> dict:
        return {"name": "tiny", "config": {"hidden": self.hidden, "value_from_obs": self.value_from_obs},
                "obs_shape": list(OBS_SHAPE), "features": [], "action_names": FakeActionSpace().names}

    def initial_state(self, batch: int, device) -> tuple[Tensor]:
        return (torch.zeros(batch, self.hidden, device=device),)

    def encode(self, obs: Tensor) -> Tensor:
        return torch.tanh(self.encoder(obs.flatten(1).float() / 10.0))

    def value_of_obs(self, obs: Tensor) -> Tensor:
        return self.critic(self.encode(obs)).squeeze(-1)

    def forward(self, obs: Tensor, state: tuple[Tensor]) -> tuple[Tensor, Tensor, tuple[Tensor]]:
        x = self.encode(obs)
        h = self.cell(x, state[0])
        values = self.critic(x if self.value_from_obs else h).squeeze(-1)
        return self.actor(h), values, (h,)

    forward_sequence = Policy.forward_sequence  # the reference step loop, with state resets


def tiny_config(num_envs: int = 2, num_agents: int = 2, bptt: int = 4, passes: int = 2,
                minibatch_segments: int = 2, time_limit: str = "truncate", device: str = "cpu",
                **trainer) -> RunConfig:
    game = GameConfig(
        num_agents=num_agents,
        time_limit=time_limit,
        map=MapConfig(room=RandomRoomConfig(width=5, height=5, agents=num_agents), border_width=1),
    )
    batch = num_envs * num_agents * bptt * passes
    fields = dict(num_envs=num_envs, bptt_horizon=bptt, batch_size=batch,
                  minibatch_size=minibatch_segments * bptt, total_timesteps=batch * 4)
    fields.update(trainer)
    config = RunConfig(run="tiny", game=game, trainer=TrainerConfig(**fields))
    config.system.device = device
    config.logging.console = "none"
    config.logging.tensorboard = False
    return config


def make_trainer(config: RunConfig, episode_length: int = 5, value_from_obs: bool = False, **kwargs):
    from heartgrid.trainer.trainer import Trainer

    engine = FakeEngine(config.trainer.num_envs, config.game.num_agents, episode_length,
                        time_limit=config.game.time_limit, device=config.system.device)
    policy = TinyPolicy(len(engine.action_space.names), value_from_obs=value_from_obs)
    return Trainer(config, engine=engine, policy=policy, **kwargs)
