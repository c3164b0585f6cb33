"""The policy contract every HeartGrid policy follows (built-in or a user's own module).

    policy = make_policy(config, features, action_names, obs_shape)
    state = policy.initial_state(batch, device)                     # tuple of [batch, ...] tensors
    logits, values, state = policy(obs, state)                      # one rollout step
    logits, values = policy.forward_sequence(obs, state, episode_starts)   # the update pass

Shapes: `obs` uint8 `[B, F, H, W]` (one step) or `[S, T, F, H, W]` (segments × time);
`logits` `[B, A]` / `[S, T, A]` over the bound action names; `values` `[B]` / `[S, T]`.

Recurrent state is **batch-major**: every tensor in the tuple has the batch on dim 0, so the
trainer resets the slots whose episode ended with `state[i] * keep.view(-1, 1, ...)` and stores
segment-start states by indexing rows. `forward_sequence` zeroes the state entering step `t` of
segment `s` where `episode_starts[s, t]` is True (the first observation of a new episode).

`adapt` re-binds a policy to another feature registry and action list by *name*
(see `inputs.py` and `actions.py`); `spec` is a JSON-able description from which
`heartgrid.policies.registry.policy_from_spec` rebuilds the same architecture.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import Tensor, nn

from heartgrid.config.run import PolicyConfig
from heartgrid.engine.features import Feature, FeatureRegistry
from heartgrid.policies.actions import NamedActionHead, check_action_names
from heartgrid.policies.inputs import FeatureInput

State = tuple[Tensor, ...]


class Policy(nn.Module, metaclass=abc.ABCMeta):
    """Base class: subclasses create `self.action_head` and implement `initial_state` and
    `forward`; `forward_sequence` here is a correct step loop they may override for speed."""

    action_head: NamedActionHead

    def __init__(
        self,
        config: PolicyConfig,
        features: FeatureRegistry,
        action_names: list[str],
        obs_shape: tuple[int, int, int],
    ):
        super().__init__()
        if len(obs_shape) != 3 or any(int(d) < 1 for d in obs_shape):
            raise ValueError(f"obs_shape must be (features, height, width), got {tuple(obs_shape)}")
        if obs_shape[0] != len(features):
            raise ValueError(
                f"obs_shape has {obs_shape[0]} feature planes but the registry has "
                f"{len(features)} features; pass engine.obs_shape with engine.features"
            )
        self.config = config.model_copy(deep=True)
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.inputs = FeatureInput(features)

    @abc.abstractmethod
    def initial_state(self, batch: int, device: torch.device | str) -> State:
        """Zero recurrent state for `batch` slots, batch-major, on `device`."""

    @abc.abstractmethod
    def forward(self, obs: Tensor, state: State) -> tuple[Tensor, Tensor, State]:
        """One step: obs `[B, F, H, W]` → (logits `[B, A]`, values `[B]`, new state)."""

    def forward_sequence(
        self, obs: Tensor, state: State, episode_starts: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Segments: obs `[S, T, F, H, W]`, state at the segment start, episode_starts bool
        `[S, T]` → (logits `[S, T, A]`, values `[S, T]`)."""
        check_sequence(obs, episode_starts)
        logits, values = [], []
        for t in range(episode_starts.shape[1]):
            state = reset_state(state, episode_starts[:, t])
            step_logits, step_values, state = self(obs[:, t], state)
            logits.append(step_logits)
            values.append(step_values)
        return torch.stack(logits, dim=1), torch.stack(values, dim=1)

    def grow_feature_inputs(self, new_features: list[Feature]) -> None:
        """Add learnable inputs for `new_features`, which `adapt` then appends, in this order,
        to the policy's features. Policies that can learn new features override this."""
        raise ValueError(
            f"policy {self.config.name!r} cannot learn new features "
            f"({[f.name for f in new_features]}); adapt with learn_new_features=False "
            "to ignore them"
        )

    def adapt(
        self,
        features: FeatureRegistry,
        action_names: list[str],
        *,
        learn_new_features: bool = False,
    ) -> None:
        """Bind to observations laid out by `features` and to logits over `action_names`.

        Features and actions are matched by name. Unknown features are ignored, or become new
        learnable inputs with `learn_new_features=True` (training). New actions always get new
        learnable embeddings (a policy must score every action it is offered). Parameters may
        be replaced: call this before building the optimizer.
        """
        check_action_names(action_names)
        unknown = self.inputs.unknown(features) if learn_new_features else []
        if unknown:
            # Grow first: a policy that cannot learn new features refuses before anything changed.
            self.grow_feature_inputs([features[name] for name in unknown])
        self.inputs.bind(features, learn_new=learn_new_features)
        self.action_head.bind(action_names)

    @property
    def action_names(self) -> list[str]:
        return self.action_head.active_names

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def spec(self) -> dict[str, Any]:
        """JSON-able: what `policy_from_spec` needs to rebuild this architecture, plus the
        current binding (observed features, active actions) for information."""
        cls = type(self)
        return {
            "name": self.config.name,
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "config": self.config.model_dump(mode="json"),
            "obs_shape": [len(self.inputs.features), *self.obs_shape[1:]],
            "features": [f.to_dict() for f in self.inputs.features],
            "action_names": list(self.action_head.names),
            "bound": {
                "features": list(self.inputs.observed_names),
                "actions": list(self.action_names),
            },
            "num_parameters": self.num_parameters(),
        }


def reset_state(state: State, episode_starts: Tensor) -> State:
    """Zero the batch rows of `state` where `episode_starts` (bool `[B]`) is True."""
    keep = (~episode_starts).to(state[0].dtype)
    return tuple(s * keep.view(-1, *([1] * (s.dim() - 1))) for s in state)


def check_sequence(obs: Tensor, episode_starts: Tensor) -> None:
    if obs.dim() != 5 or episode_starts.shape != obs.shape[:2]:
        raise ValueError(
            f"forward_sequence expects obs [S, T, F, H, W] and episode_starts [S, T]; got obs "
            f"{tuple(obs.shape)} and episode_starts {tuple(episode_starts.shape)}"
        )
    if episode_starts.dtype != torch.bool:
        raise ValueError(f"episode_starts must be a bool tensor, got {episode_starts.dtype}")
