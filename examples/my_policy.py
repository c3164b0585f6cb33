"""A user's own policy: an MLP encoder and a GRU core, plugged in by name.

Train with it (from the repository root, so `examples` is importable):

    PYTHONPATH=. heartgrid train small_easy_shaped policy.name=examples.my_policy:MyPolicy

or run it for a shape check on random observations: `python -m examples.my_policy`.

What the interface asks (heartgrid/policies/README.md): subclass `Policy`, build
`self.action_head` (a `LinearActionHead`, which scores actions by name), read observations
through `self.inputs` (normalised planes matched by feature name), and implement
`initial_state` and `forward`. `forward_sequence`, `adapt` and `spec` come from `Policy`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from heartgrid.config.run import PolicyConfig
from heartgrid.engine.features import FeatureRegistry
from heartgrid.policies import LinearActionHead, Policy, State


class MyPolicy(Policy):
    def __init__(
        self,
        config: PolicyConfig,
        features: FeatureRegistry,
        action_names: list[str],
        obs_shape: tuple[int, int, int],
        width: int = 64,
    ):
        super().__init__(config, features, action_names, obs_shape)
        num_features, height, width_cells = obs_shape
        hidden = config.hidden_size
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(num_features * height * width_cells, width), nn.ReLU()
        )
        self.gru = nn.GRUCell(width, hidden)
        self.value_head = nn.Linear(hidden, 1)
        self.action_head = LinearActionHead(hidden, action_names)

    def initial_state(self, batch: int, device: torch.device | str) -> State:
        # One tensor, batch on dim 0: the trainer zeroes rows of finished episodes.
        return (torch.zeros(batch, self.config.hidden_size, device=device),)

    def forward(self, obs: Tensor, state: State) -> tuple[Tensor, Tensor, State]:
        features = self.encoder(self.inputs(obs))  # obs uint8 [B, F, H, W] -> [B, width]
        hidden = self.gru(features, state[0])
        return self.action_head(hidden), self.value_head(hidden).squeeze(-1), (hidden,)


if __name__ == "__main__":
    from heartgrid.engine.action_space import ActionSpace
    from heartgrid.policies import make_policy
    from heartgrid.recipes.small import small_game

    game = small_game()
    features = FeatureRegistry.default()
    obs_shape = (len(features), game.obs_height, game.obs_width)
    config = PolicyConfig(name="examples.my_policy:MyPolicy", kwargs={"width": 64})
    policy = make_policy(config, features, ActionSpace.from_game(game).names, obs_shape)

    obs = torch.randint(0, 4, (5, 8, *obs_shape), dtype=torch.uint8)  # [segments, steps, F, H, W]
    starts = torch.zeros(5, 8, dtype=torch.bool)
    starts[:, 4] = True
    logits, values = policy.forward_sequence(obs, policy.initial_state(5, "cpu"), starts)
    print(f"{config.name}: {policy.num_parameters():,} parameters")
    print(f"logits {tuple(logits.shape)}, values {tuple(values.shape)}")
