"""Episode boundaries of the batched engine: starting episodes and recording finished ones.

`begin_episodes` lays out new maps and fresh agents and converters for a set of envs, all in
tensor operations over those envs (RULES.md "Maps": agents facing up, color 0, empty
inventories; converters idle holding their initial output items).

`EpisodeLog` keeps finished episodes on the device, one small tensor per batch of envs that
ended on the same step, and moves them to the host only when `drain` is called (once per
rollout), so stepping never waits for a device-to-host copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from heartgrid.engine.mapgen import MapGenerator
from heartgrid.engine.rng import hash32
from heartgrid.engine.state import CONVERTER_CHANNELS, World, all_stats, env_rows
from heartgrid.engine.stats import GAME_STATS, EpisodeBatch


def begin_episodes(w: World, maps: MapGenerator, env_ids: torch.Tensor, episodes: torch.Tensor,
                   lengths: torch.Tensor, first_conv_channel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Start episode `episodes[i]` (of length `lengths[i]`) in env `env_ids[i]`, in place;
    returns the slots and the converter ids of those envs (`env_rows`).
    `first_conv_channel`: the feature channel "converting" (see World.conv_feature_index)."""
    d = w.dims
    k, A, C, cpe = len(env_ids), d.num_agents, d.conv_per_env, d.cells_per_env
    seeds = w.env_seed[env_ids]
    w.env_episode[env_ids] = episodes
    w.env_step[env_ids] = 0
    w.env_length[env_ids] = lengths
    w.env_priority_prefix[env_ids] = hash32(seeds, episodes)

    planes_env = w.planes[: d.cells].view(d.num_envs, cpe, -1)
    rank_cells = maps.rank_cells(seeds, episodes, w.param_shuffled[env_ids])  # [k, I, R]
    maps.paint(planes_env, env_ids, rank_cells, w.param_rank_code[env_ids],
               w.param_rank_swappable[env_ids])
    base = (env_ids * cpe).view(-1, 1)

    # Agents: agent (instance i, a) sits on the cell of rank agent_rank[a] of instance i.
    ranks = w.param_agent_rank[env_ids].unsqueeze(1).expand(-1, d.instances, -1)
    cells = rank_cells.gather(2, ranks).reshape(k, A) + base
    slots = env_rows(env_ids, A)
    w.agent_cell[slots] = cells.view(-1)
    w.agent_at[: d.cells].view(d.num_envs, cpe).index_fill_(0, env_ids, -1)
    w.agent_at[cells.view(-1)] = slots
    for name in ("agent_orientation", "agent_inventory", "agent_frozen", "agent_color",
                 "agent_last_action",
                 "agent_episode_reward", "agent_inventory_value", "agent_counts"):
        getattr(w, name).index_fill_(0, slots, 0)
    w.agent_item_stats.index_fill_(1, slots, 0)

    # Converters: slot (instance i, m) sits on the cell of rank conv_rank[m] of instance i.
    ranks = w.param_conv_rank[env_ids]  # [k, Cr], -1 = inactive slot
    active = (ranks >= 0).unsqueeze(1).expand(-1, d.instances, -1).reshape(k, C)
    ranks = ranks.clamp(min=0).unsqueeze(1).expand(-1, d.instances, -1)
    cells = torch.where(active, rank_cells.gather(2, ranks).reshape(k, C) + base, d.cells)
    convs = env_rows(env_ids, C)
    w.conv_cell[convs] = cells.view(-1)
    channels = torch.arange(first_conv_channel, first_conv_channel + CONVERTER_CHANNELS, device=w.device)
    w.conv_feature_index[convs] = cells.view(-1, 1) * d.num_features + channels
    w.conv_at[: d.cells].view(d.num_envs, cpe).index_fill_(0, env_ids, -1)
    w.conv_at[cells.view(-1)] = convs
    w.conv_at[d.cells] = -1
    w.conv_inventory[convs] = w.conv_initial[convs]
    for name in ("conv_timer", "conv_conversions", "conv_blocked"):
        getattr(w, name).index_fill_(0, convs, 0)
    return slots, convs


@dataclass
class Finished:
    """Episodes of envs that ended on the same step (device tensors, then host metadata)."""

    rewards: torch.Tensor  # [k] (the policy's agents)
    agent_stats: torch.Tensor  # [k, stats]
    npc_rewards: torch.Tensor  # [k] (the NPCs; [0] without NPCs)
    npc_agent_stats: torch.Tensor  # [k, stats] ([0, stats] without NPCs)
    conversions: torch.Tensor  # [k, C]
    blocked: torch.Tensor  # [k, C]
    env_ids: list[int]
    task_ids: list[int]
    lengths: list[int]
    slot_names: list[tuple[str | None, ...]]  # per env: the object name of each converter slot


class EpisodeLog:
    def __init__(self, agent_stat_names: tuple[str, ...], policy_agents: int | None = None):
        """policy_agents: agents 0 .. policy_agents - 1 of each env are the policy's, the rest
        NPCs whose episodes are reported apart (None: no NPCs)."""
        self.agent_stat_names = agent_stat_names
        self.policy_agents = policy_agents
        self.game_stat_names: list[str] = []
        self.pending: list[Finished] = []

    def add_game_stat_objects(self, names: list[str]) -> None:
        """Converter names whose game stats every drained batch reports (0 when absent)."""
        for name in names:
            for stat in GAME_STATS:
                if f"{name}.{stat}" not in self.game_stat_names:
                    self.game_stat_names.append(f"{name}.{stat}")

    def record(self, w: World, env_ids: torch.Tensor, env_list: list[int], task_ids: list[int],
               lengths: list[int], slot_names: list[tuple[str | None, ...]]) -> None:
        d = w.dims
        k, A, C = len(env_list), d.num_agents, d.conv_per_env
        slots, convs = env_rows(env_ids, A), env_rows(env_ids, C)
        stats = all_stats(w, slots).view(k, A, d.num_stats).float()
        # float64 mean: the same float32 result whatever the device's summation order.
        rewards = w.agent_episode_reward[slots].view(k, A).double()
        mine = self.policy_agents if self.policy_agents is not None else A
        self.pending.append(Finished(
            rewards=rewards[:, :mine].mean(dim=1).float(),
            agent_stats=stats[:, :mine].mean(dim=1),
            npc_rewards=rewards[:, mine:].mean(dim=1).float() if mine < A else rewards[:0, 0].float(),
            npc_agent_stats=stats[:, mine:].mean(dim=1) if mine < A else stats[:0, 0],
            conversions=w.conv_conversions[convs].view(k, C),
            blocked=w.conv_blocked[convs].view(k, C),
            env_ids=env_list, task_ids=task_ids, lengths=lengths, slot_names=slot_names,
        ))

    TENSORS = ("rewards", "agent_stats", "npc_rewards", "npc_agent_stats", "conversions", "blocked")

    def state_dict(self) -> dict:
        """The undrained episodes and the reported names, on the CPU."""
        return {
            "game_stat_names": list(self.game_stat_names),
            "pending": [{**{k: getattr(f, k).cpu().clone() for k in self.TENSORS},
                         "env_ids": f.env_ids, "task_ids": f.task_ids, "lengths": f.lengths,
                         "slot_names": [list(n) for n in f.slot_names]} for f in self.pending],
        }

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.game_stat_names = list(state["game_stat_names"])
        empty = torch.zeros(0, len(self.agent_stat_names))
        self.pending = [
            Finished(**{k: f.get(k, empty if k == "npc_agent_stats" else empty[:, 0]).to(device)
                        for k in self.TENSORS}, env_ids=f["env_ids"],
                     task_ids=f["task_ids"], lengths=f["lengths"],
                     slot_names=[tuple(n) for n in f["slot_names"]])
            for f in state["pending"]
        ]

    def drain(self) -> EpisodeBatch:
        npcs = self.policy_agents is not None
        if not self.pending:
            return EpisodeBatch.empty(self.agent_stat_names, self.game_stat_names, npcs)
        done, self.pending = self.pending, []
        width = max(f.conversions.shape[1] for f in done)  # converter capacity may have grown

        def cat(field: str) -> np.ndarray:
            parts = [getattr(f, field) for f in done]
            if field in ("conversions", "blocked"):
                parts = [torch.nn.functional.pad(p, (0, width - p.shape[1])) for p in parts]
            return torch.cat(parts).cpu().numpy()

        rewards, agent_stats = cat("rewards"), cat("agent_stats")
        npc_rewards, npc_stats = (cat("npc_rewards"), cat("npc_agent_stats")) if npcs else (None, None)
        counts = {"conversions": cat("conversions"), "blocked": cat("blocked")}
        slot_names = [names for f in done for names in f.slot_names]
        # Sum converter slots by object name: counts [E, C] @ one-hot [C, names], per layout.
        game = np.zeros((len(rewards), len(self.game_stat_names)), dtype=np.float32)
        for names in set(slot_names):
            rows = [i for i, n in enumerate(slot_names) if n == names]
            for stat in GAME_STATS:
                onehot = np.zeros((width, len(self.game_stat_names)), dtype=np.float32)
                for slot, name in enumerate(names):
                    if name is not None:
                        onehot[slot, self.game_stat_names.index(f"{name}.{stat}")] = 1
                game[rows] += counts[stat][rows] @ onehot
        return EpisodeBatch(
            env_ids=torch.tensor([e for f in done for e in f.env_ids], dtype=torch.int64),
            task_ids=torch.tensor([t for f in done for t in f.task_ids], dtype=torch.int64),
            rewards=torch.from_numpy(rewards),
            lengths=torch.tensor([n for f in done for n in f.lengths], dtype=torch.int64),
            agent_stats={n: torch.from_numpy(agent_stats[:, i].copy())
                         for i, n in enumerate(self.agent_stat_names)},
            game_stats={n: torch.from_numpy(game[:, j].copy())
                        for j, n in enumerate(self.game_stat_names)},
            npc_rewards=torch.from_numpy(npc_rewards) if npcs else None,
            npc_agent_stats=({n: torch.from_numpy(npc_stats[:, i].copy())
                              for i, n in enumerate(self.agent_stat_names)} if npcs else None),
        )
