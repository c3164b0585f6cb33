"""Observation planes → the policy's own feature layout, matched by feature name.

A policy is built for one feature registry; its input channels (conv planes, token embedding
rows) follow that registry's order. Observations may later come from another registry (a newer
engine with features added or reordered). `FeatureInput.bind` points each feature the policy
knows at the plane with the same name in the new observations:

- a feature whose id moved reads from its new plane;
- a feature the policy knows but the observations lack reads as zeros (an empty plane);
- a feature the observations have but the policy does not know is ignored
  (`learn_new=False`, evaluation), or appended to the policy's features as a new learnable
  input (`learn_new=True`, training; the policy grows its first layer, see `Policy.adapt`).

Values are divided by the normalisation the policy was trained with, so a registry that
changes a normalisation does not silently rescale a trained policy's inputs.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from heartgrid.engine.features import Feature, FeatureRegistry


class FeatureInput(nn.Module):
    def __init__(self, features: FeatureRegistry):
        super().__init__()
        self.features: list[Feature] = []
        # Derived from the binding, rebuilt by `bind`; not part of the weights.
        self.register_buffer("source_index", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("scale", torch.zeros(0), persistent=False)
        self.bind(features, learn_new=True)  # the policy's own features, in order

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def unknown(self, observed: FeatureRegistry) -> list[str]:
        """Names in `observed` that this policy has no input for."""
        known = set(self.names)
        return [name for name in observed.names if name not in known]

    def bind(self, observed: FeatureRegistry, learn_new: bool) -> list[Feature]:
        """Read observations laid out by `observed`; returns the features newly learned."""
        unknown = self.unknown(observed) if learn_new else []
        new = [
            replace(observed[name], id=len(self.features) + i)
            for i, name in enumerate(unknown)
        ]
        for feature in new:
            if not feature.normalization > 0:
                raise ValueError(
                    f"feature {feature.name!r} has normalization {feature.normalization}; "
                    "normalisations must be positive (policies divide by them)"
                )
        self.features += new

        # A feature absent from the observations reads plane 0 scaled by 0: an empty plane
        # without allocating one.
        index = [observed[f.name].id if f.name in observed else 0 for f in self.features]
        scale = [1.0 / f.normalization if f.name in observed else 0.0 for f in self.features]
        device = self.scale.device
        self.source_index = torch.tensor(index, dtype=torch.long, device=device)
        self.scale = torch.tensor(scale, dtype=torch.float32, device=device)
        self.observed_names = observed.names
        self.ignored = self.unknown(observed)
        self.missing = [f.name for f in self.features if f.name not in observed]
        self.identity = index == list(range(len(observed))) and not self.missing
        return new

    def forward(self, obs: Tensor) -> Tensor:
        """uint8 `[N, F_obs, H, W]` → float `[N, F_policy, H, W]`, each plane normalised."""
        if obs.dim() != 4 or obs.shape[1] != len(self.observed_names):
            raise ValueError(
                f"observations of shape {tuple(obs.shape)} do not match the bound feature "
                f"registry ({len(self.observed_names)} features): expected [N, "
                f"{len(self.observed_names)}, H, W]; call policy.adapt(engine.features, ...) "
                "after changing the engine"
            )
        if not self.identity:
            obs = obs.index_select(1, self.source_index)  # on the bytes: a quarter of the traffic
        scale = self.scale.view(1, -1, 1, 1)
        if obs.is_cuda and obs.dtype == torch.uint8:
            return torch.mul(obs, scale)  # one kernel that converts as it reads
        # On a CPU that multiply converts its input to a temporary first: `obs.float() * scale`
        # and `torch.mul(obs, scale)` both allocate two float tensors, 21 MB each per CPU
        # minibatch, where this allocates one. copy=True: a float32 input is never modified.
        return obs.to(torch.float32, copy=True).mul_(scale)
