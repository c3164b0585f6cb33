"""Shared helpers for the checkpoint tests: a small real policy and a realistic trainer state."""

from __future__ import annotations

import copy
import random

import numpy as np
import torch

from heartgrid.config.run import PolicyConfig
from heartgrid.engine.features import FeatureRegistry
from heartgrid.policies import Policy, make_policy

FEATURES = FeatureRegistry.default()
ACTIONS = ["noop_0", "move_0", "move_1", "rotate_0", "rotate_1", "get_items_0"]
OBS_SIZE = 7


def small_policy(seed: int = 0, name: str = "fast", hidden_size: int = 16) -> Policy:
    torch.manual_seed(seed)
    config = PolicyConfig(name=name, hidden_size=hidden_size, lstm_layers=1)
    return make_policy(config, FEATURES, ACTIONS, (len(FEATURES), OBS_SIZE, OBS_SIZE))


def trainer_state(policy: Policy, epoch: int) -> dict:
    """What a trainer checkpoints: optimizer state after a step (taken on a copy, so `policy`
    keeps its weights), counters, generator states."""
    policy = copy.deepcopy(policy)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    loss = sum(p.square().sum() for p in policy.parameters())
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return {
        "epoch": epoch,
        "agent_step": epoch * 100,
        "optimizer": optimizer.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy_generator": np.random.default_rng(epoch).bit_generator.state,
            "actions": torch.Generator().manual_seed(epoch).get_state(),
        },
        "schedules": {"learning_rate": 1e-3, "clip_coef": 0.1},
        "timer": {"total_seconds": 12.5},
    }


def random_obs(batch: int, seed: int, features: FeatureRegistry = FEATURES) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, len(features), OBS_SIZE, OBS_SIZE)
    values = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    return values * (torch.rand(shape, generator=generator) < 0.2)


def outputs(policy: Policy, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        logits, values, _ = policy(obs, policy.initial_state(obs.shape[0], "cpu"))
    return logits, values


class TinyUserPolicy(torch.nn.Module):
    """A user's own module following the policy interface (heartgrid/policies/README.md),
    without subclassing heartgrid.policies.Policy: one linear layer over plane means."""

    def __init__(self, config: PolicyConfig, features: FeatureRegistry, action_names: list[str], obs_shape: tuple):
        super().__init__()
        self.config, self.features, self.obs_shape = config, features, obs_shape
        self.names = list(action_names)
        self.active = list(action_names)
        self.linear = torch.nn.Linear(len(features), len(action_names) + 1)

    def initial_state(self, batch: int, device) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(batch, 1, device=device),)

    def forward(self, obs, state):
        out = self.linear(obs.float().mean(dim=(-1, -2)))
        rows = torch.tensor([self.names.index(n) for n in self.active])
        return out[:, rows], out[:, -1], state

    def forward_sequence(self, obs, state, episode_starts):
        logits, values, _ = self(obs.flatten(0, 1), state)
        return logits.unflatten(0, obs.shape[:2]), values.unflatten(0, obs.shape[:2])

    def adapt(self, features, action_names, *, learn_new_features=False) -> None:
        self.active = list(action_names)

    def spec(self) -> dict:
        return {
            "name": self.config.name,
            "config": self.config.model_dump(mode="json"),
            "obs_shape": list(self.obs_shape),
            "features": self.features.to_list(),
            "action_names": self.names,
        }
