"""Conflict priorities (RULES.md "Randomness"), computed a block of steps at a time.

Agent a of an env has priority `hash32(env_seed, episode, t, STREAM_PRIORITY, a)` at step t;
higher wins, ties go to the lower agent index, so the engine compares the unique key
`priority * A + (A - 1 - a)`. Hashing is some thirty small tensor operations; doing them for
`PRIORITY_BLOCK` steps at once costs about as much as for one step on a CPU, where a step's
cost is mostly the number of operations. The keys of block row r are those of step
`base[env] + r`; every env's rows advance together, and an env whose episode begins mid-block
gets its rows recomputed with the new episode and a base such that its next row is t = 0.
"""

from __future__ import annotations

import torch

from heartgrid.engine.rng import STREAM_PRIORITY, fold
from heartgrid.engine.state import PRIORITY_BLOCK, World


class PriorityKeys:
    def __init__(self, world: World):
        d, device = world.dims, world.device
        self.num_envs, self.num_agents = d.num_envs, d.num_agents
        self.agent = torch.arange(d.num_agents, device=device)
        self.tiebreak = d.num_agents - 1 - self.agent  # ties go to the lower agent index
        self.rows = torch.arange(PRIORITY_BLOCK, device=device).unsqueeze(1)
        self.row = PRIORITY_BLOCK  # the block row the next step uses; a full block: refill

    def next(self, w: World) -> torch.Tensor:
        """int64 [S]: this step's keys."""
        if self.row == PRIORITY_BLOCK:
            self.fill(w, None, w.env_step)
            self.row = 0
        keys = w.agent_priority_keys[self.row]
        self.row += 1
        return keys

    def restart(self, w: World, env_ids: torch.Tensor) -> None:
        """Envs `env_ids` begin an episode (t = 0 at the next step)."""
        if self.row < PRIORITY_BLOCK:
            self.fill(w, env_ids, torch.full_like(env_ids, -self.row))

    def fill(self, w: World, env_ids: torch.Tensor | None, base: torch.Tensor) -> None:
        steps = base.unsqueeze(0) + self.rows  # [B, k]: the step of each block row
        prefix = w.env_priority_prefix if env_ids is None else w.env_priority_prefix[env_ids]
        per_env = fold(prefix.unsqueeze(0), steps, STREAM_PRIORITY)
        keys = fold(per_env.unsqueeze(2), self.agent) * self.num_agents + self.tiebreak  # [B, k, A]
        block = w.agent_priority_keys.view(PRIORITY_BLOCK, self.num_envs, self.num_agents)
        if env_ids is None:
            block.copy_(keys)
        else:
            block.index_copy_(1, env_ids, keys)
