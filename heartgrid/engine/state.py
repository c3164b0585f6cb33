"""All device state of the batched engine, in one place: `World`.

Layout (N envs, A agents per env, S = N*A slots, C converter slots per env, M cells):

- The grid of every env is padded by walls (`Dims.pad_r`, `pad_c`) and flattened, env by env:
  cell index = env * Hp*Wp + (row + pad_r) * Wp + (col + pad_c). `planes[cell]` holds the cell's
  observation features (channels last, so an observation window row is one contiguous run of
  bytes); `planes[cell, type_id]` is the occupancy grid itself (type_id + 1, 0 = empty).
- Tensors that masked scatters write to have *trash* rows after the real ones: slot s writes
  to cell M + s (or converter N*C + s) when its action does not apply, instead of branching,
  so a step never needs to look at data on the host. One trash row per slot, rather than one
  shared, keeps a GPU's writes from piling up on a single address.
- `agent_inventory` has one zero row after the S real ones, for gathers "by nobody".
- Per-env parameters (`param_*`, and `slot_*` for those read per agent) are the device copy
  of each env's TaskTables (tables.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from heartgrid.engine.stats import ITEM_STATS

NUM_ITEMS = 10
PRIORITY_BLOCK = 16  # steps of conflict keys computed at once (priority.py)
CONVERTER_CHANNELS = 12  # converting, swappable, then the 10 inv:<item> features, adjacent
UNLIMITED = 2**31 - 1  # max_output / max_conversions of -1 ("unlimited"), as an int32 bound


@dataclass(frozen=True)
class Dims:
    num_envs: int
    num_agents: int  # per env
    instances: int
    room_cells: int
    agents_per_room: int
    conv_per_room: int  # converter slots per room (capacity; unused slots are inactive)
    num_types: int  # enabled action types
    num_stats: int  # per-agent stats (without the trash column)
    height: int
    width: int
    pad_r: int
    pad_c: int
    num_features: int
    obs_height: int
    obs_width: int

    @property
    def slots(self) -> int:
        return self.num_envs * self.num_agents

    @property
    def padded_height(self) -> int:
        return self.height + 2 * self.pad_r

    @property
    def padded_width(self) -> int:
        return self.width + 2 * self.pad_c

    @property
    def cells_per_env(self) -> int:
        return self.padded_height * self.padded_width

    @property
    def cells(self) -> int:
        return self.num_envs * self.cells_per_env

    @property
    def conv_per_env(self) -> int:
        return self.instances * self.conv_per_room

    @property
    def converters(self) -> int:
        return self.num_envs * self.conv_per_env


# name -> (shape as a function of Dims, dtype, fill).
def _specs(d: Dims) -> dict[str, tuple[tuple[int, ...], torch.dtype, float]]:
    N, S, C, M = d.num_envs, d.slots, d.converters, d.cells
    T, R, I10 = d.num_types, d.room_cells, NUM_ITEMS
    u8, i16, i32, i64 = torch.uint8, torch.int16, torch.int32, torch.int64
    f32, b = torch.float32, torch.bool
    f64 = torch.float64  # reward parameters: rewards are computed in float64 (as reference.py)
    return {
        # grid
        "planes": ((M + S, d.num_features), u8, 0),
        "agent_at": ((M + S,), i64, -1),  # global slot of the agent in a cell, -1 none
        "conv_at": ((M + S,), i64, -1),  # global converter slot in a cell, -1 none
        # agents
        "agent_cell": ((S,), i64, 0),
        "agent_orientation": ((S,), i64, 0),
        "agent_inventory": ((S + 1, I10), i16, 0),
        "agent_frozen": ((S,), i16, 0),
        "agent_color": ((S,), u8, 0),
        "agent_last_action": ((S, 2), i64, 0),  # (type, arg) of the last valid action
        "agent_episode_reward": ((S,), f32, 0),
        "agent_inventory_value": ((S,), f64, 0),  # sum over items of min(r * count, cap)
        "agent_item_stats": ((len(ITEM_STATS), S, I10), i32, 0),  # stats.AgentStatLayout
        "agent_counts": ((S, d.num_stats - len(ITEM_STATS) * I10 + 1), i32, 0),
        "agent_priority_keys": ((PRIORITY_BLOCK, S), i64, 0),
        # envs
        "env_seed": ((N,), i64, 0),
        "env_episode": ((N,), i64, 0),
        "env_step": ((N,), i64, 0),
        "env_length": ((N,), i64, 1),
        "env_priority_prefix": ((N,), i64, 0),  # hash32(env_seed, episode)
        # converters
        "conv_cell": ((C,), i64, M),
        # Flat byte index into `planes` of the 12 feature channels a converter changes
        # (converting, swappable, inv:*), fixed for an episode; the trash row when inactive.
        "conv_feature_index": ((C, CONVERTER_CHANNELS), i64, M * d.num_features),
        "conv_inventory": ((C + S, I10), i16, 0),
        "conv_timer": ((C,), i32, 0),  # one countdown for converting + cooling (converters.py)
        "conv_conversions": ((C,), i32, 0),
        "conv_blocked": ((C,), i32, 0),
        # converter parameters (from the env's task, per slot)
        "conv_active": ((C,), b, 0),
        "conv_input": ((C + S, I10), i16, 0),
        "conv_output": ((C + S, I10), i16, 0),
        "conv_output_mask": ((C + S, I10), i16, 0),  # 1 for the items it outputs
        "conv_initial": ((C, I10), i16, 0),
        "conv_finish_at": ((C,), i32, 1),  # cooldown + 1
        "conv_busy_time": ((C,), i32, 1),  # conversion_ticks + cooldown
        "conv_max_output": ((C,), i32, UNLIMITED),
        "conv_max_conversions": ((C,), i32, 0),  # 0 for inactive slots: they never start
        # per-slot parameters (the same for all agents of an env; per slot to save gathers)
        "slot_item_max": ((S, I10), i16, 0),
        "slot_freeze": ((S,), i16, 0),
        "slot_attack_cost": ((S, I10), i16, 0),
        "slot_attack_need": ((S, I10), i16, 0),
        "slot_defense": ((S, I10), i16, 0),
        "slot_has_defense": ((S,), b, 0),
        # per-env parameters
        "param_reward_weight": ((N, I10), f64, 0),
        "param_reward_cap": ((N, I10), f64, float("inf")),
        "param_stat_weight": ((N, d.num_stats), f64, 0),
        "param_stat_cap": ((N, d.num_stats), f64, float("inf")),
        "param_group_id": ((N,), u8, 0),
        "param_group_pct": ((N,), f64, 0),
        "param_action_need": ((N * T, I10), i16, 0),
        "param_action_cost": ((N * T, I10), i16, 0),
        "param_action_penalty": ((N * T,), f64, 0),
        "param_shuffled": ((N,), b, 0),
        "param_rank_code": ((N, R), u8, 0),
        "param_rank_swappable": ((N, R), u8, 0),
        "param_agent_rank": ((N, d.agents_per_room), i64, 0),
        "param_conv_rank": ((N, d.conv_per_room), i64, -1),
    }


# Tensors with trash rows after the real ones (see the module docstring).
TRASH_ROWS = {"planes": "cells", "agent_at": "cells", "conv_at": "cells", "agent_inventory": "slots",
              "conv_inventory": "converters", "conv_input": "converters", "conv_output": "converters",
              "conv_output_mask": "converters"}
"""Tensor name -> how many of its rows are real (the rest are trash rows)."""


class World:
    """The device tensors of a batch of envs; attribute per entry of `_specs`."""

    def __init__(self, dims: Dims, device: torch.device):
        self.dims = dims
        self.device = device
        for name, (shape, dtype, fill) in _specs(dims).items():
            setattr(self, name, torch.full(shape, fill, dtype=dtype, device=device))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in _specs(self.dims)}

    def game_state(self) -> dict[str, torch.Tensor]:
        """The tensors without their trash rows (views): what the game is, as opposed to where
        masked writes went. How a step reaches a state (every slot masked, or only the winners'
        rows with host skips) may leave different trash behind, never a different game."""
        d = self.dims
        real = {"cells": d.cells, "slots": d.slots, "converters": d.converters}
        return {name: t[: real[TRASH_ROWS[name]]] if name in TRASH_ROWS else t
                for name, t in self.tensors().items()}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        specs = _specs(self.dims)
        missing = sorted(set(specs) - set(tensors))
        if missing:
            raise ValueError(f"engine state is missing tensor(s) {missing}")
        for name, (shape, dtype, _) in specs.items():
            value = tensors[name]
            if tuple(value.shape) != shape or value.dtype != dtype:
                raise ValueError(f"engine state tensor {name!r} has shape {tuple(value.shape)} "
                                 f"{value.dtype}, expected {shape} {dtype}")
        problems = out_of_range(tensors, self.dims)
        if problems:
            raise ValueError(f"engine state has out-of-range values in {', '.join(problems)}")
        for name in specs:
            getattr(self, name).copy_(tensors[name])

    def grow_converters(self, conv_per_room: int) -> None:
        """Make room for more converters per room (a task with more converters arrived).

        Existing converters keep their state; global converter slots are renumbered
        (env * C + c), so `conv_at` is rebuilt from the converters' cells.
        """
        old = self.dims
        new = Dims(**{**old.__dict__, "conv_per_room": conv_per_room})
        specs = _specs(new)
        n, i, c_old = old.num_envs, old.instances, old.conv_per_room
        # Converter tensors: the first dimension is the converter slot (then trash rows).
        converter_tensors = [n for n in specs if n.startswith("conv_") and n != "conv_at"]
        for name in converter_tensors + ["param_conv_rank"]:
            shape, dtype, fill = specs[name]
            before = getattr(self, name)
            after = torch.full(shape, fill, dtype=dtype, device=self.device)
            if name == "param_conv_rank":
                after[:, :c_old] = before
            else:
                rows = old.converters
                src = before[:rows].view(n, i, c_old, *before.shape[1:])
                after[: new.converters].view(n, i, conv_per_room, *before.shape[1:])[:, :, :c_old] = src
            setattr(self, name, after)
        self.dims = new
        self.conv_cell.masked_fill_(~self.conv_active, new.cells)
        self.conv_at.fill_(-1)
        slots = torch.arange(new.converters, device=self.device)
        self.conv_at.index_put_((self.conv_cell,), slots)
        self.conv_at[new.cells] = -1


def out_of_range(t: dict[str, torch.Tensor], d: Dims) -> list[str]:
    """Names of the index tensors of a state that point outside the tensors they index: a
    damaged state must be refused when loaded, not fail inside a step (the native step would
    write wherever an index points)."""
    checks = {
        "agent_cell": (0, d.cells - 1), "agent_orientation": (0, 3), "agent_at": (-1, d.slots - 1),
        "conv_at": (-1, d.converters - 1), "conv_cell": (0, d.cells),  # inactive: the trash cell
        "conv_feature_index": (0, t["planes"].numel() - 1), "env_length": (1, None),
    }
    return [name for name, (low, high) in checks.items()
            if bool((t[name] < low).any()) or (high is not None and bool((t[name] > high).any()))]


def env_rows(env_ids: torch.Tensor, per_env: int) -> torch.Tensor:
    """The rows of envs `env_ids`, in order, of a tensor that holds `per_env` consecutive rows
    per env (slots: num_agents per env; converters: conv_per_env)."""
    return (env_ids.view(-1, 1) * per_env + torch.arange(per_env, device=env_ids.device)).view(-1)


def all_stats(w: World, slots: torch.Tensor | None = None) -> torch.Tensor:
    """int32 [k, stats]: every per-agent stat of `slots` (default all) in reported order."""
    items, counts = w.agent_item_stats, w.agent_counts[:, :-1]
    if slots is not None:
        items, counts = items.index_select(1, slots), counts.index_select(0, slots)
    return torch.cat([items.permute(1, 0, 2).flatten(1), counts], dim=1)


def sum_in_order(x: torch.Tensor, dim: int) -> torch.Tensor:
    """`x` summed over `dim` from the first term to the last, as the native step and
    reference.py add. torch's `sum` pairs terms by the CPU's vector width, so float64 reward
    sums would differ in their last bit between the tensor and the native step (and between
    CPUs); a CPU's cumsum adds in order."""
    return x.cumsum(dim).select(dim, -1)


def holds(have: torch.Tensor, need: torch.Tensor) -> torch.Tensor:
    """bool [rows]: every item of `have` [rows, 10] is at least that of `need`.

    `(have - need).amin(1) >= 0` rather than `(have >= need).all(1)`: on a CPU, torch's
    boolean all-reduction over a short inner dimension is 3-4x slower."""
    return (have - need).amin(dim=1) >= 0
