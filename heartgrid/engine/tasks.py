"""Per-env tasks: copying a compiled task (tables.py) into the rows of the envs that run it.

Every per-env parameter of the batched engine is a row of a `World.param_*` or `World.conv_*`
tensor, so envs of one batch can play different tasks (a curriculum) and an env switches task
by having its rows overwritten when its next episode begins; the other envs are not touched.
"""

from __future__ import annotations

import numpy as np
import torch

from heartgrid.devices import to_device
from heartgrid.engine.state import UNLIMITED, World
from heartgrid.engine.tables import TaskTables


def write_task(w: World, env_ids: torch.Tensor, tables: TaskTables) -> None:
    """Give envs `env_ids` (int64 [k] on the engine's device) the task `tables`."""
    d, device = w.dims, w.device
    k = len(env_ids)
    if tables.converters_per_room > d.conv_per_room:
        raise ValueError("grow the converter capacity before writing this task")

    def rows(tensor: torch.Tensor, value, per_env: int = 1) -> None:
        """tensor viewed [N, per_env, ...]: rows of env_ids := value (broadcast)."""
        view = tensor.view(d.num_envs, per_env, *tensor.shape[1:])
        src = to_device(torch.as_tensor(np.asarray(value)), device).to(view.dtype)
        view.index_copy_(0, env_ids, src.expand(k, *view.shape[1:]).contiguous())

    A = d.num_agents
    rows(w.slot_item_max, tables.item_max, A)
    rows(w.slot_freeze, tables.freeze_duration, A)
    rows(w.slot_attack_cost, tables.attack_cost, A)
    rows(w.slot_attack_need, tables.attack_need, A)
    rows(w.slot_defense, tables.defense, A)
    rows(w.slot_has_defense, tables.defense.any(), A)
    rows(w.param_reward_weight, tables.reward_weight)
    rows(w.param_reward_cap, tables.reward_cap)
    rows(w.param_stat_weight, tables.stat_weight)
    rows(w.param_stat_cap, tables.stat_cap)
    rows(w.param_group_id, tables.group_id)
    rows(w.param_group_pct, tables.group_pct)
    rows(w.param_action_need, tables.action_need, d.num_types)
    rows(w.param_action_cost, tables.action_cost, d.num_types)
    rows(w.param_action_penalty, tables.action_penalty, d.num_types)
    rows(w.param_shuffled, tables.shuffled)
    rows(w.param_rank_code, tables.rank_code)
    rows(w.param_rank_swappable, tables.rank_swappable)
    rows(w.param_agent_rank, tables.agent_rank)

    # Converters: room slot m of every instance; slots beyond the task's converters are inactive.
    cr, n = d.conv_per_room, tables.converters_per_room
    rank = np.full(cr, -1, dtype=np.int64)
    rank[:n] = tables.conv_rank
    rows(w.param_conv_rank, rank)

    def per_slot(value: np.ndarray, fill) -> np.ndarray:
        """[Cr, ...] -> [I * Cr, ...], padded to the capacity with `fill`."""
        padded = np.full((cr, *value.shape[1:]), fill, dtype=value.dtype)
        padded[:n] = value
        return np.tile(padded, (d.instances,) + (1,) * (value.ndim - 1))

    per_env = d.conv_per_env
    active = np.zeros(cr, dtype=bool)
    active[:n] = True
    rows(w.conv_active, per_slot(active, False), per_env)
    rows(w.conv_initial, per_slot(tables.conv_initial, 0), per_env)
    rows(w.conv_finish_at, per_slot(tables.conv_cooldown + 1, 1), per_env)
    rows(w.conv_busy_time, per_slot(tables.conv_ticks + tables.conv_cooldown, 1), per_env)
    unlimited = lambda v: np.where(v < 0, UNLIMITED, v).astype(np.int32)  # noqa: E731
    rows(w.conv_max_output, per_slot(unlimited(tables.conv_max_output), UNLIMITED), per_env)
    rows(w.conv_max_conversions, per_slot(unlimited(tables.conv_max_conversions), 0), per_env)
    # conv_input / conv_output carry a trash row after the N*C real ones.
    C = d.converters
    rows(w.conv_input[:C], per_slot(tables.conv_input, 0), per_env)
    rows(w.conv_output[:C], per_slot(tables.conv_output, 0), per_env)
    rows(w.conv_output_mask[:C], per_slot((tables.conv_output > 0).astype(np.int16), 0), per_env)


def slot_names(tables: TaskTables, conv_per_room: int, instances: int) -> tuple[str | None, ...]:
    """The object name of each converter slot of an env running `tables` (None: inactive)."""
    padding = (None,) * (conv_per_room - tables.converters_per_room)
    return (tables.conv_names + padding) * instances
