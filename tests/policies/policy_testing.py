"""Shared helpers for the policy tests: registries, action lists and plausible observations."""

from __future__ import annotations

import torch

from heartgrid.config.game import GameConfig
from heartgrid.config.run import PolicyConfig
from heartgrid.engine.action_space import ActionSpace
from heartgrid.engine.features import Feature, FeatureRegistry
from heartgrid.policies import Policy, make_policy

POLICY_NAMES = ["conv_lstm", "fast", "latent_attn_tiny", "latent_attn_small", "latent_attn_med"]
FEATURES = FeatureRegistry.default()
ACTIONS = ActionSpace.from_game(GameConfig()).names  # the arena's 19 actions


def build(name: str, size: int = 11, seed: int = 0, **kwargs) -> Policy:
    torch.manual_seed(seed)
    config = PolicyConfig(name=name, kwargs=kwargs)
    return make_policy(config, FEATURES, ACTIONS, (len(FEATURES), size, size))


def random_obs(
    shape: tuple[int, ...], size: int, seed: int, num_features: int = len(FEATURES)
) -> torch.Tensor:
    """uint8 observations `[*shape, F, size, size]`, about 10% of entries non-empty, and every
    observation has its centre cell occupied (the agent itself), as the engine guarantees."""
    generator = torch.Generator().manual_seed(seed)
    full = (*shape, num_features, size, size)
    values = torch.randint(1, 256, full, generator=generator, dtype=torch.uint8)
    present = torch.rand(full, generator=generator) < 0.1
    obs = values * present
    obs[..., 0, size // 2, size // 2] = 1
    return obs


def registry(names: list[str]) -> FeatureRegistry:
    """A registry with `names` in this order; normalisations taken from the default registry
    (100 for a name it does not have)."""
    norms = {f.name: f.normalization for f in FEATURES}
    features = [Feature(n, i, norms.get(n, 100.0), "cell") for i, n in enumerate(names)]
    return FeatureRegistry(features)
