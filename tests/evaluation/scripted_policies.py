"""Hand-written policies for the evaluation tests: uniform random, and a greedy navigator that
walks to the nearest visible altar holding a heart and takes it.

Both follow the part of the policy interface `evaluate_suite` uses: `adapt(features,
action_names)`, `initial_state(batch, device)` and `forward(obs, state) -> (logits, values,
state)`. They read the observation by feature name, and act by action name, like a policy.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from heartgrid.config.items import TYPE_IDS

# Orientation codes (RULES.md): 0 up, 1 down, 2 left, 3 right, as (row, col) steps.
STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))
BLOCKED = -1e9


class RandomPolicy(nn.Module):
    """Every action equally likely."""

    def adapt(self, features, action_names: list[str]) -> None:
        self.num_actions = len(action_names)

    def initial_state(self, batch: int, device) -> tuple[Tensor, ...]:
        return ()

    def forward(self, obs: Tensor, state: tuple[Tensor, ...]):
        batch = obs.shape[0]
        return torch.zeros(batch, self.num_actions), torch.zeros(batch), state


class GreedyAltarPolicy(nn.Module):
    """Nearest visible altar with a heart (Manhattan distance in the window): face it and take
    the heart when next to it, else turn towards it and step along the longer axis (the other
    one when that is blocked). No altar in sight, or no free step towards one: wander, forward
    while the way ahead is free, turning to a random free side now and then. It has no memory:
    an altar out of sight is forgotten (the `memory` map shows it)."""

    def adapt(self, features, action_names: list[str]) -> None:
        self.type_plane = features["type_id"].id
        self.heart_plane = features["inv:heart"].id
        self.orientation_plane = features["agent:orientation"].id
        self.altar_code = TYPE_IDS["altar"] + 1  # the type plane stores type id + 1
        self.move = action_names.index("move_0")  # forward
        self.get = action_names.index("get_items_0")
        self.rotate = torch.tensor([action_names.index(f"rotate_{d}") for d in range(4)])
        self.num_actions = len(action_names)

    def initial_state(self, batch: int, device) -> tuple[Tensor, ...]:
        return ()

    def forward(self, obs: Tensor, state: tuple[Tensor, ...]):
        batch, _, height, width = obs.shape
        cy, cx = height // 2, width // 2
        rows = torch.arange(batch)
        types = obs[:, self.type_plane].long()
        altars = (types == self.altar_code) & (obs[:, self.heart_plane] > 0)
        dy_grid = (torch.arange(height) - cy).view(1, -1, 1)
        dx_grid = (torch.arange(width) - cx).view(1, 1, -1)
        distance = (dy_grid.abs() + dx_grid.abs()).expand(batch, -1, -1).float()
        distance = distance.masked_fill(~altars, float("inf")).reshape(batch, -1)
        nearest = distance.argmin(dim=1)
        seen = torch.isfinite(distance.min(dim=1).values)
        dy, dx = nearest // width - cy, nearest % width - cx
        facing = obs[:, self.orientation_plane, cy, cx].long()
        free = torch.stack([types[:, cy + r, cx + c] == 0 for r, c in STEPS], dim=1)  # [B, 4]

        vertical = torch.where(dy < 0, 0, 1)
        horizontal = torch.where(dx < 0, 2, 3)
        longer_is_vertical = dy.abs() >= dx.abs()
        primary = torch.where(longer_is_vertical, vertical, horizontal)
        secondary = torch.where(longer_is_vertical, horizontal, vertical)
        secondary_ok = torch.where(longer_is_vertical, dx != 0, dy != 0) & free[rows, secondary]
        adjacent = seen & ((dy.abs() + dx.abs()) == 1)
        can_step = free[rows, primary] | secondary_ok
        heading = torch.where(adjacent | free[rows, primary], primary, secondary)
        decided = adjacent | (seen & can_step)
        when_facing = torch.where(adjacent, self.get, self.move)
        action = torch.where(heading == facing, when_facing, self.rotate[heading])

        logits = torch.full((batch, self.num_actions), BLOCKED)
        logits[rows[decided], action[decided]] = 0.0
        wander = ~decided
        ahead_free = free[rows, facing]
        logits[wander, self.move] = torch.where(ahead_free[wander], 0.0, BLOCKED)
        for d in range(4):
            turn = wander & free[:, d] & (facing != d)
            # Mostly forward (turn logits -2 each) while the way is free; any free side if not.
            logits[turn, int(self.rotate[d])] = torch.where(ahead_free[turn], -2.0, 0.0)
        stuck = wander & ~free.any(dim=1)
        logits[stuck, self.get] = 0.0  # boxed in: any action will do, keep one valid
        return logits, torch.zeros(batch), state
