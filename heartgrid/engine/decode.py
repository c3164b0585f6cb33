"""Steps 1-2 of RULES.md for the whole batch: actions to what every slot does (`Intent`).

Actions come as flat indices into the action space ([S]) or as (type, arg) pairs ([S, 2]).
A flat index is decoded by one row gather from a table: index + 1, clamped to [0, K + 1],
where rows 0 and K + 1 are the invalid ones, so out-of-range indices need no branch. Invalid
actions are counted (`action.invalid_type` / `.invalid_arg`) and do nothing; the observation
shows the last valid action an agent sent; frozen agents thaw by one tick and skip the step.
"""

from __future__ import annotations

import torch

from heartgrid.engine.action_space import ActionSpace
from heartgrid.engine.actions import Intent, move_offset
from heartgrid.engine.state import World
from heartgrid.engine.stats import AgentStatLayout


class ActionDecoder:
    def __init__(self, space: ActionSpace, layout: AgentStatLayout, world: World):
        device = world.device
        # A row holds (type, arg, the move-table offset of that action; see actions.py).
        pad = [(0, 0)]
        decode = pad + list(space.flat) + pad
        self.rows = torch.tensor([(t, a, move_offset(t, a)) for t, a in decode], device=device)
        self.valid = torch.tensor([0 < i < len(decode) - 1 for i in range(len(decode))], device=device)
        self.num_args = torch.tensor(space.type_num_args, device=device)
        self.type_ids = torch.arange(len(space.type_names), device=device).unsqueeze(1)
        self.slots, self.layout, self.device = world.dims.slots, layout, device
        self.bind(world)

    def bind(self, w: World) -> None:
        """Views of the world's tensors (again if the world reallocates)."""
        column = self.layout.column
        self.frozen = w.agent_frozen[: self.slots]
        self.invalid_type = w.agent_counts[:, column["action.invalid_type"]]
        self.invalid_arg = w.agent_counts[:, column["action.invalid_arg"]]
        self.frozen_ticks = w.agent_counts[:, column["status.frozen.ticks"]]

    def check(self, actions: torch.Tensor, fresh: bool) -> torch.Tensor:
        """int64 actions on the engine's device, [slots] or [slots, 2]. `fresh`: always a new tensor (a
        compiled step's guards tell dtypes apart, and tensors made inside inference mode from
        others: one kind of tensor, one graph per shape)."""
        S = self.slots
        actions = torch.as_tensor(actions, device=self.device)
        if actions.shape not in ((S,), (S, 2)):
            raise ValueError(f"actions must have shape ({S},) of flat indices or ({S}, 2) of "
                             f"(type, arg) pairs, got {tuple(actions.shape)}")
        return actions.to(torch.int64, copy=True) if fresh else actions.long()

    def decode(self, w: World, actions: torch.Tensor, key: torch.Tensor) -> Intent:
        """Steps 1-2; `actions` as `check` returns them, `key` this step's priority keys."""
        if actions.dim() == 1:
            index = (actions + 1).clamp_(0, len(self.valid) - 1)
            rows = self.rows.index_select(0, index)  # [S, 3]: type, arg, move offset
            valid = self.valid.index_select(0, index)
            self.invalid_type.add_(~valid)
        else:
            type_ok = (actions[:, 0] >= 0) & (actions[:, 0] < len(self.num_args))
            type_ = actions[:, 0].clamp(0, len(self.num_args) - 1)
            valid = type_ok & (actions[:, 1] >= 0) & (actions[:, 1] < self.num_args[type_])
            type_, arg = type_ * valid, actions[:, 1] * valid
            rows = torch.stack([type_, arg, move_offset(type_, arg)], dim=1)
            self.invalid_type.add_(~type_ok)
            self.invalid_arg.add_(type_ok & ~valid)
        type_, arg, offset = rows[:, 0], rows[:, 1], rows[:, 2]
        # The observation shows the last valid action an agent sent (frozen or not).
        torch.where(valid.unsqueeze(1), rows[:, :2], w.agent_last_action, out=w.agent_last_action)

        is_frozen = self.frozen > 0
        self.frozen.sub_(1).clamp_(min=0)
        self.frozen_ticks.add_(is_frozen)

        acting = valid & ~is_frozen
        doing = (self.type_ids == type_.unsqueeze(0)) & acting  # [T, S] one-hot of the types
        return Intent(type_, arg, offset, acting, doing, key, torch.zeros_like(valid))
