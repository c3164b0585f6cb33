"""A GameConfig compiled to the flat numeric tables the batched engine keeps per env.

Everything a task may change (rewards, caps, item limits, action costs, recipes, cooldowns,
initial counts, the room's content) becomes a NumPy row here; the engine copies an env's rows
to the device when that env starts an episode of the task (see batched.py). What a task may
not change (the agent count, grid shape, observation size, enabled actions, room geometry) is
checked by `compatibility_error`, because the engine's buffers are sized by it.

Agents: RULES.md puts every agent in `game.agent_group` (the lowest id), so one resolved agent
config (defaults + that group's overrides) describes all agents of an env.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heartgrid.config.game import ConverterConfig, GameConfig
from heartgrid.config.items import ITEM_INDEX, ITEMS, TYPE_IDS
from heartgrid.engine.action_space import ActionSpace
from heartgrid.engine.maps import AGENT, WALL, object_config, room_plan, room_shape
from heartgrid.engine.stats import AgentStatLayout

NUM_ITEMS = len(ITEMS)
AGENT_CODE = TYPE_IDS[AGENT] + 1  # cells store type_id + 1; 0 is empty (features.py)


def _items(counts: dict[str, int] | dict[str, float], dtype, fill=0) -> np.ndarray:
    row = np.full(NUM_ITEMS, fill, dtype=dtype)
    for item, n in counts.items():
        row[ITEM_INDEX[item]] = n
    return row


@dataclass(frozen=True, eq=False)
class TaskTables:
    """One game as numbers. Array shapes: items 10, T enabled action types, R room cells,
    Ar agents per room, Cr converters per room."""

    game: GameConfig
    max_steps: int
    desync_episodes: bool
    terminal: bool  # time_limit == "terminal"
    # agents (all in game.agent_group)
    group_id: int
    group_pct: float
    freeze_duration: int
    item_max: np.ndarray  # int16 [10]
    reward_weight: np.ndarray  # float64 [10]
    reward_cap: np.ndarray  # float64 [10], inf = uncapped
    stat_weight: np.ndarray  # float64 [stats]
    stat_cap: np.ndarray  # float64 [stats]
    # actions, by enabled type id
    action_need: np.ndarray  # int16 [T, 10]: max(required, consumed) per item
    action_cost: np.ndarray  # int16 [T, 10]: consumed on success
    action_penalty: np.ndarray  # float64 [T]
    defense: np.ndarray  # int16 [10]
    attack_cost: np.ndarray  # int16 [10]
    attack_need: np.ndarray  # int16 [10]
    # room plan (maps.RoomPlan as codes)
    shuffled: bool
    rank_code: np.ndarray  # uint8 [R]: type_id + 1 of what rank k holds, 0 empty
    rank_swappable: np.ndarray  # uint8 [R]
    agent_rank: np.ndarray  # int64 [Ar]
    conv_rank: np.ndarray  # int64 [Cr]
    # converters, by room slot (same order as conv_rank)
    conv_names: tuple[str, ...]
    conv_input: np.ndarray  # int16 [Cr, 10]
    conv_output: np.ndarray  # int16 [Cr, 10]
    conv_initial: np.ndarray  # int16 [Cr, 10]
    conv_cooldown: np.ndarray  # int32 [Cr]
    conv_ticks: np.ndarray  # int32 [Cr]
    conv_max_output: np.ndarray  # int32 [Cr]
    conv_max_conversions: np.ndarray  # int32 [Cr]

    @property
    def converters_per_room(self) -> int:
        return len(self.conv_names)

    @property
    def has_stat_rewards(self) -> bool:
        return bool(np.any(self.stat_weight != 0))


def compile_game(game: GameConfig) -> TaskTables:
    """Compile a game; ValueError (MapError for maps) names what the engine cannot run."""
    plan = room_plan(game)  # validates objects and room size
    space = ActionSpace.from_game(game)
    layout = AgentStatLayout(space.type_names)

    group_name = game.agent_group
    agent = game.group_agent_config(group_name)
    unknown = sorted(n for n in {*agent.stat_rewards, *agent.stat_reward_caps} if n not in layout.index)
    if unknown:
        raise ValueError(f"agent.stat_rewards names unknown stat(s) {unknown}; "
                         f"counted stats are {list(layout.names)}")
    stat_weight = np.zeros(len(layout), dtype=np.float64)
    stat_cap = np.full(len(layout), np.inf, dtype=np.float64)
    for name, w in agent.stat_rewards.items():
        stat_weight[layout.index[name]] = w
    for name, cap in agent.stat_reward_caps.items():
        stat_cap[layout.index[name]] = cap

    item_max = np.full(NUM_ITEMS, agent.default_item_max, dtype=np.int16)
    for item, n in agent.item_max.items():
        item_max[ITEM_INDEX[item]] = n

    need, cost, penalty = [], [], []
    for name in space.type_names:
        cfg = getattr(game.actions, name)
        required = _items(cfg.required_resources, np.int16)
        consumed = _items(cfg.consumed_resources, np.int16)
        need.append(np.maximum(required, consumed))
        cost.append(consumed)
        penalty.append(cfg.failure_penalty)

    codes, swappable = [], []
    for name in plan.rank_names:
        if name is None:
            codes.append(0)
            swappable.append(0)
        elif name == AGENT:
            codes.append(AGENT_CODE)
            swappable.append(0)
        else:
            obj = object_config(game, name)
            if obj.type_id + 1 > 255:
                raise ValueError(f"object {name!r} has type_id {obj.type_id}; observations store "
                                 "type_id + 1 in a byte, so type ids must be below 255")
            codes.append(obj.type_id + 1)
            swappable.append(int(getattr(obj, "swappable", False)))
    def is_converter(name: str | None) -> bool:
        return name not in (None, AGENT) and isinstance(object_config(game, name), ConverterConfig)

    conv_ranks = [k for k, name in enumerate(plan.rank_names) if is_converter(name)]
    convs = [object_config(game, plan.rank_names[k]) for k in conv_ranks]

    def per_conv(fn, dtype, shape=()) -> np.ndarray:
        return np.array([fn(c) for c in convs], dtype=dtype).reshape((len(convs), *shape))

    return TaskTables(
        game=game,
        max_steps=game.max_steps,
        desync_episodes=game.desync_episodes,
        terminal=game.time_limit == "terminal",
        group_id=game.groups[group_name].id,
        group_pct=game.groups[group_name].group_reward_pct,
        freeze_duration=agent.freeze_duration,
        item_max=item_max,
        reward_weight=_items(agent.rewards, np.float64),
        reward_cap=_items(agent.reward_caps, np.float64, fill=np.inf),
        stat_weight=stat_weight,
        stat_cap=stat_cap,
        action_need=np.stack(need),
        action_cost=np.stack(cost),
        action_penalty=np.array(penalty, dtype=np.float64),
        defense=_items(game.actions.attack.defense_resources, np.int16),
        attack_cost=_items(game.actions.attack.consumed_resources, np.int16),
        attack_need=np.maximum(_items(game.actions.attack.consumed_resources, np.int16),
                               _items(game.actions.attack.required_resources, np.int16)),
        shuffled=plan.shuffled,
        rank_code=np.array(codes, dtype=np.uint8),
        rank_swappable=np.array(swappable, dtype=np.uint8),
        agent_rank=np.array([k for k, n in enumerate(plan.rank_names) if n == AGENT], dtype=np.int64),
        conv_rank=np.array(conv_ranks, dtype=np.int64),
        conv_names=tuple(plan.rank_names[k] for k in conv_ranks),  # type: ignore[misc]
        conv_input=per_conv(lambda c: _items(c.input_resources, np.int16), np.int16, (NUM_ITEMS,)),
        conv_output=per_conv(lambda c: _items(c.output_resources, np.int16), np.int16, (NUM_ITEMS,)),
        conv_initial=per_conv(
            lambda c: (_items(c.output_resources, np.int16) > 0) * c.initial_resource_count,
            np.int16, (NUM_ITEMS,)),
        conv_cooldown=per_conv(lambda c: c.cooldown, np.int32),
        conv_ticks=per_conv(lambda c: c.conversion_ticks, np.int32),
        conv_max_output=per_conv(lambda c: c.max_output, np.int32),
        conv_max_conversions=per_conv(lambda c: c.max_conversions, np.int32),
    )


def _wall(game: GameConfig) -> tuple[int, bool]:
    wall = object_config(game, WALL)
    return wall.type_id, bool(getattr(wall, "swappable", False))


def compatibility_error(base: GameConfig, other: GameConfig) -> str | None:
    """Why `other` cannot run in an engine built for `base` (None if it can)."""
    checks = [
        ("num_agents", base.num_agents, other.num_agents),
        ("grid shape (map.grid_shape)", base.map.grid_shape, other.map.grid_shape),
        ("observation size (obs_height, obs_width)", (base.obs_height, base.obs_width),
         (other.obs_height, other.obs_width)),
        ("enabled actions", ActionSpace.from_game(base).type_names,
         ActionSpace.from_game(other).type_names),
        ("room size (map.room height, width)", room_shape(base.map), room_shape(other.map)),
        ("map.instances", base.map.instances, other.map.instances),
        ("map.border_width", base.map.border_width, other.map.border_width),
        ("map.instance_border_width", base.map.instance_border_width,
         other.map.instance_border_width),
        # Borders and outside cells are painted once per engine with the game's wall.
        ("wall object (type_id, swappable)", _wall(base), _wall(other)),
    ]
    for what, mine, theirs in checks:
        if mine != theirs:
            return f"{what} differs: the engine was built for {mine}, the task has {theirs}"
    return None
