"""Episode statistics of the batched engine (RULES.md "Stats").

Per-agent stats are counted in one int32 matrix `[slots, len(names) + 1]` whose columns follow
`AgentStatLayout`; the extra last column is a trash column that masked scatters write to, so
that counting never needs a data-dependent branch (and never a host sync). At episode end the
engine averages an env's rows over its agents and appends the result to a list of device
tensors; `EpisodeBatch` is what `drain_episodes()` returns after one transfer to the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from heartgrid.config.items import ITEMS

ITEM_STATS: tuple[str, ...] = ("gained", "lost", "get", "put", "stolen")
GAME_STATS: tuple[str, ...] = ("conversions", "blocked")


class AgentStatLayout:
    """Where every per-agent stat is counted. `names` is the reported order:

    1. item stats `<item>.<kind>`, kind-major (ITEM_STATS x ITEMS), counted in
       `World.agent_item_stats[kind index, slot, item]`, one contiguous [S, 10] block per kind
       so that adding a step's item counts is one dense add;
    2. counters, in `World.agent_counts[slot, column]`: `action.<type>.success` / `.failed` at
       columns `2 * type id` (+ 1 for failed), then `action.invalid_type`,
       `action.invalid_arg`, `action.attack.blocked` (0 when attack is disabled),
       `status.frozen.ticks`; the last column (`trash`) absorbs masked scatters.
    """

    def __init__(self, action_types: tuple[str, ...]):
        self.item_names = tuple(f"{item}.{kind}" for kind in ITEM_STATS for item in ITEMS)
        counters = []
        for action in action_types:
            counters += [f"action.{action}.success", f"action.{action}.failed"]
        counters += ["action.invalid_type", "action.invalid_arg", "action.attack.blocked",
                     "status.frozen.ticks"]
        self.counter_names: tuple[str, ...] = tuple(counters)
        self.names: tuple[str, ...] = self.item_names + self.counter_names
        self.index: dict[str, int] = {name: i for i, name in enumerate(self.names)}
        self.column: dict[str, int] = {name: i for i, name in enumerate(counters)}
        self.trash = len(counters)

    def __len__(self) -> int:
        return len(self.names)

    @staticmethod
    def kind(kind: str) -> int:
        """Index of an item stat kind ("gained", "put", ...) in World.agent_item_stats."""
        return ITEM_STATS.index(kind)


@dataclass
class EpisodeBatch:
    """Episodes finished since the last drain, on the CPU, in the order they finished.

    rewards: episode reward (sum over its steps) averaged over the env's agents.
    agent_stats: per-agent stats averaged over the env's agents.
    game_stats: `<object>.conversions` and `<object>.blocked` summed over the env's objects of
    that name (0 for an object the episode's map did not hold).
    With NPCs (game.policy_agents_pct < 1) `rewards` and `agent_stats` average over the agents
    the policy plays, and `npc_rewards` / `npc_agent_stats` over the NPCs (else None).
    """

    env_ids: torch.Tensor  # int64 [E]
    task_ids: torch.Tensor  # int64 [E]
    rewards: torch.Tensor  # float32 [E]
    lengths: torch.Tensor  # int64 [E]
    agent_stats: dict[str, torch.Tensor]  # float32 [E] each
    game_stats: dict[str, torch.Tensor]  # float32 [E] each
    npc_rewards: torch.Tensor | None = None  # float32 [E]
    npc_agent_stats: dict[str, torch.Tensor] | None = None  # float32 [E] each

    def __len__(self) -> int:
        return int(self.env_ids.numel())

    @staticmethod
    def empty(agent_stat_names: tuple[str, ...], game_stat_names: list[str],
              npcs: bool = False) -> EpisodeBatch:
        f = torch.zeros(0, dtype=torch.float32)
        i = torch.zeros(0, dtype=torch.int64)
        return EpisodeBatch(i, i.clone(), f, i.clone(), {n: f.clone() for n in agent_stat_names},
                            {n: f.clone() for n in game_stat_names},
                            f.clone() if npcs else None,
                            {n: f.clone() for n in agent_stat_names} if npcs else None)
