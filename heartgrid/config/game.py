"""Typed configuration of one game (SPEC §1): objects, actions, agents, groups, rewards, map.

Every number of the game lives here, with the reference value as its default where the SPEC
gives one. Recipes (heartgrid/recipes) build complete GameConfigs from these models.
"""

from __future__ import annotations

import difflib
import math
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from heartgrid.config.base import Config
from heartgrid.config.items import ITEMS, TYPE_IDS

ItemCounts = dict[str, int]


def _check_items(value: dict, what: str) -> dict:
    unknown = sorted(set(value) - set(ITEMS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], ITEMS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{what}: unknown item(s) {unknown}; valid items are {list(ITEMS)}{hint}")
    return value


# --------------------------------------------------------------------------------------------
# Objects


class WallConfig(Config):
    """A wall, or a block (a wall that agents can swap places with)."""

    kind: Literal["wall"] = "wall"
    type_id: int = Field(1, ge=1, le=255)
    swappable: bool = False
    """True for blocks: the `swap` action trades places with it."""


class ConverterConfig(Config):
    """A converter: consumes an input recipe, produces an output recipe after a delay (SPEC §1.1)."""

    kind: Literal["converter"] = "converter"
    type_id: int = Field(ge=2, le=255)
    input_resources: ItemCounts = Field(default_factory=dict)
    output_resources: ItemCounts = Field(default_factory=dict)
    cooldown: int = Field(0, ge=0)
    """Steps after a conversion finishes before the next can start."""
    conversion_ticks: int = Field(1, ge=1)
    """Steps between starting a conversion (inputs consumed) and its outputs appearing."""
    max_output: int = Field(5, ge=-1)
    """No conversion starts while the converter holds this many output items; -1 is unlimited."""
    max_conversions: int = Field(-1, ge=-1)
    """Conversions allowed per episode; -1 is unlimited."""
    initial_resource_count: int = Field(0, ge=0)
    """Output items the converter holds at the start of an episode (of each output item)."""

    @field_validator("input_resources", "output_resources")
    @classmethod
    def _items(cls, value: ItemCounts) -> ItemCounts:
        if any(v < 0 for v in value.values()):
            raise ValueError("recipe counts must be >= 0")
        return _check_items(value, "recipe")


ObjectConfig = Annotated[WallConfig | ConverterConfig, Field(discriminator="kind")]


# --------------------------------------------------------------------------------------------
# Actions


class ActionConfig(Config):
    enabled: bool = True
    required_resources: ItemCounts = Field(default_factory=dict)
    """The agent must hold these to attempt the action."""
    consumed_resources: ItemCounts = Field(default_factory=dict)
    """Taken from the agent when the action succeeds."""
    failure_penalty: float = 0.0
    """Reward subtracted when the action fails."""

    @field_validator("required_resources", "consumed_resources")
    @classmethod
    def _items(cls, value: ItemCounts) -> ItemCounts:
        return _check_items(value, "action resources")


class AttackConfig(ActionConfig):
    consumed_resources: ItemCounts = Field(default_factory=lambda: {"laser": 1})
    defense_resources: ItemCounts = Field(default_factory=lambda: {"armor": 1})
    """A target holding these is protected: they are consumed instead of freezing it."""

    @field_validator("defense_resources")
    @classmethod
    def _defense_items(cls, value: ItemCounts) -> ItemCounts:
        return _check_items(value, "defense resources")


class ActionsConfig(Config):
    """The enabled actions form the action space; their order here is the order of the flat space."""

    noop: ActionConfig = Field(default_factory=ActionConfig)
    move: ActionConfig = Field(default_factory=ActionConfig)
    rotate: ActionConfig = Field(default_factory=ActionConfig)
    move_cardinal: ActionConfig = Field(default_factory=lambda: ActionConfig(enabled=False))
    move_8way: ActionConfig = Field(default_factory=lambda: ActionConfig(enabled=False))
    put_items: ActionConfig = Field(default_factory=ActionConfig)
    get_items: ActionConfig = Field(default_factory=ActionConfig)
    attack: AttackConfig = Field(default_factory=AttackConfig)
    swap: ActionConfig = Field(default_factory=ActionConfig)
    change_color: ActionConfig = Field(default_factory=lambda: ActionConfig(enabled=False))


# Number of arguments of each action (SPEC §1.2).
ACTION_ARGS: dict[str, int] = {
    "noop": 1,
    "move": 2,
    "rotate": 4,
    "move_cardinal": 4,
    "move_8way": 8,
    "put_items": 1,
    "get_items": 1,
    "attack": 9,
    "swap": 1,
    "change_color": 2,
}


# --------------------------------------------------------------------------------------------
# Agents, groups, rewards


class AgentConfig(Config):
    """Agent defaults. Groups override them only where a group sets a value explicitly."""

    default_item_max: int = Field(50, ge=0, le=255)
    item_max: ItemCounts = Field(default_factory=lambda: {"heart": 255})
    """Per-item inventory limits that differ from `default_item_max`."""
    freeze_duration: int = Field(10, ge=0)
    rewards: dict[str, float] = Field(default_factory=dict)
    """Inventory reward per item held: going from a to b items pays min(r*b, cap) - min(r*a, cap)."""
    reward_caps: dict[str, float] = Field(default_factory=dict)
    """Cap of an item's inventory reward; items not listed are uncapped."""
    stat_rewards: dict[str, float] = Field(default_factory=dict)
    """Reward per unit of a counted per-agent stat (for example `action.attack.success`)."""
    stat_reward_caps: dict[str, float] = Field(default_factory=dict)

    @field_validator("item_max", "rewards", "reward_caps")
    @classmethod
    def _items(cls, value: dict) -> dict:
        return _check_items(value, "agent")


class AgentOverrides(Config):
    """A group's explicit overrides of the agent defaults; `None` means "inherit".

    The single inheritance rule (SPEC §1.5): a group changes only what it sets here. For the
    dict fields the merge is per key. Because "inherit" is an explicit `None` that survives a
    save/load round trip, a saved config resolves to exactly the same game.
    """

    default_item_max: int | None = Field(None, ge=0, le=255)
    item_max: ItemCounts | None = None
    freeze_duration: int | None = Field(None, ge=0)
    rewards: dict[str, float] | None = None
    reward_caps: dict[str, float] | None = None
    stat_rewards: dict[str, float] | None = None
    stat_reward_caps: dict[str, float] | None = None

    def apply(self, base: AgentConfig) -> AgentConfig:
        merged = base.model_dump()
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, dict):
                merged[name] = {**merged[name], **value}
            else:
                merged[name] = value
        return AgentConfig.model_validate(merged)


class GroupConfig(Config):
    id: int = Field(0, ge=0, le=255)
    group_reward_pct: float = Field(0.0, ge=0.0, le=1.0)
    """Share of each member's reward pooled and split equally among the group."""
    props: AgentOverrides = Field(default_factory=AgentOverrides)


# --------------------------------------------------------------------------------------------
# Maps


class RandomRoomConfig(Config):
    """A width x height room; agents then objects placed uniformly on empty cells (seeded)."""

    kind: Literal["random"] = "random"
    width: int = Field(25, ge=1)
    height: int = Field(25, ge=1)
    agents: int = Field(6, ge=0)
    """Agents per room (all of `GameConfig.agent_group`, the group with the lowest id)."""
    objects: dict[str, int] = Field(default_factory=dict)
    """Object name -> count; names must be keys of `game.objects`. Placed by type id, not in
    this dict's order (RULES.md "Maps")."""


class AsciiRoomConfig(Config):
    """A fixed room: `#` wall, `@`/`A` agent, `m` mine_red, `n` generator_red, `_` altar,
    `o` armory, `S` lasery, `L` lab, `F` factory, `T` temple, `s` block, `.` empty."""

    kind: Literal["ascii"] = "ascii"
    rows: list[str]

    @field_validator("rows")
    @classmethod
    def _rectangular(cls, rows: list[str]) -> list[str]:
        if not rows or len({len(r) for r in rows}) != 1:
            raise ValueError("ASCII map rows must be non-empty and all the same length")
        bad = sorted({c for r in rows for c in r} - set(ASCII_SYMBOLS) - {"@", "A", "."})
        if bad:
            raise ValueError(f"unknown map symbol(s) {bad}; valid: {sorted(ASCII_SYMBOLS)} @ A .")
        return rows

    @property
    def agents(self) -> int:
        return sum(r.count("@") + r.count("A") for r in self.rows)


ASCII_SYMBOLS: dict[str, str] = {
    "#": "wall",
    "m": "mine_red",
    "n": "generator_red",
    "_": "altar",
    "o": "armory",
    "S": "lasery",
    "L": "lab",
    "F": "factory",
    "T": "temple",
    "s": "block",
}

RoomConfig = Annotated[RandomRoomConfig | AsciiRoomConfig, Field(discriminator="kind")]


class MapConfig(Config):
    room: RoomConfig = Field(default_factory=RandomRoomConfig)
    instances: int | None = Field(None, ge=1)
    """Rooms laid out in a near-square grid: rows = ceil(sqrt(n)), cols = ceil(n / rows).
    None resolves to num_agents // agents per room when the game is validated."""
    instance_border_width: int = Field(0, ge=0)
    border_width: int = Field(6, ge=0)

    @property
    def grid_shape(self) -> tuple[int, int]:
        room = self.room
        if isinstance(room, AsciiRoomConfig):
            h, w = len(room.rows), len(room.rows[0])
        else:
            h, w = room.height, room.width
        if self.instances is None:
            raise ValueError("map.instances is resolved by GameConfig; build the map through it")
        rows = math.ceil(math.sqrt(self.instances))
        cols = math.ceil(self.instances / rows)
        ib, b = self.instance_border_width, self.border_width
        return (2 * b + rows * h + (rows - 1) * ib, 2 * b + cols * w + (cols - 1) * ib)


# --------------------------------------------------------------------------------------------
# The game


def _default_objects() -> dict[str, WallConfig | ConverterConfig]:
    """Every object of SPEC §1.1 with the arena's recipes and cooldowns."""
    conv = ConverterConfig
    ids = TYPE_IDS
    return {
        "wall": WallConfig(type_id=ids["wall"]),
        "block": WallConfig(type_id=ids["block"], swappable=True),
        "mine_red": conv(type_id=ids["mine_red"], output_resources={"ore_red": 1}, cooldown=50),
        "mine_blue": conv(type_id=ids["mine_blue"], output_resources={"ore_blue": 1}, cooldown=50),
        "mine_green": conv(type_id=ids["mine_green"], output_resources={"ore_green": 1}, cooldown=50),
        "generator_red": conv(
            type_id=ids["generator_red"],
            input_resources={"ore_red": 1},
            output_resources={"battery_red": 1},
            cooldown=25,
        ),
        "generator_blue": conv(
            type_id=ids["generator_blue"],
            input_resources={"ore_blue": 1},
            output_resources={"battery_blue": 1},
            cooldown=25,
        ),
        "generator_green": conv(
            type_id=ids["generator_green"],
            input_resources={"ore_green": 1},
            output_resources={"battery_green": 1},
            cooldown=25,
        ),
        "altar": conv(
            type_id=ids["altar"],
            input_resources={"battery_red": 3},
            output_resources={"heart": 1},
            cooldown=10,
        ),
        "armory": conv(
            type_id=ids["armory"],
            input_resources={"ore_red": 3},
            output_resources={"armor": 1},
            cooldown=10,
        ),
        "lasery": conv(
            type_id=ids["lasery"],
            input_resources={"ore_red": 1, "battery_red": 2},
            output_resources={"laser": 1},
            cooldown=10,
        ),
        "lab": conv(
            type_id=ids["lab"],
            input_resources={"ore_red": 3, "battery_red": 3},
            output_resources={"blueprint": 1},
            cooldown=5,
        ),
        "factory": conv(
            type_id=ids["factory"],
            input_resources={"blueprint": 1, "ore_red": 5, "battery_red": 5},
            output_resources={"armor": 5, "laser": 5},
            cooldown=5,
        ),
        "temple": conv(
            type_id=ids["temple"],
            input_resources={"heart": 1, "blueprint": 1},
            output_resources={"heart": 5},
            cooldown=5,
        ),
    }


class GameConfig(Config):
    num_agents: int = Field(24, ge=1)
    max_steps: int = Field(1000, ge=1)
    time_limit: Literal["truncate", "terminal"] = "truncate"
    """Behaviour switch. `truncate`: reaching max_steps truncates and the trainer bootstraps the
    value of the final observation. `terminal`: treated as a true end (reference behaviour)."""
    desync_episodes: bool = True
    """Each env's first episode ends at a random step in [1, max_steps]."""
    obs_width: int = Field(11, ge=3, le=15)
    obs_height: int = Field(11, ge=3, le=15)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    groups: dict[str, GroupConfig] = Field(default_factory=lambda: {"agent": GroupConfig(id=0)})
    actions: ActionsConfig = Field(default_factory=ActionsConfig)
    objects: dict[str, ObjectConfig] = Field(default_factory=_default_objects)
    map: MapConfig = Field(default_factory=MapConfig)

    # ---- who plays the agents (heartgrid/policies/scripted.py, docs/npcs.md) ----------------
    policy_agents_pct: float = Field(1.0, gt=0, le=1)
    """Share of each env's agents played by the policy being trained or evaluated: agents
    0 .. round(pct x num_agents) - 1 of every env (at least one); the rest are NPCs played by
    `npc_policy_uri`. Their experience is not trained on; their stats are logged as `npc/*`."""
    npc_policy_uri: str | None = None
    """Who plays the NPCs: `scripted:random`, `scripted:noop`, `scripted:greedy` (a heart-
    seeker), any policy URI (a checkpoint directory, `runs/x?epoch=N`, `runs/x?best=score`), a
    run directory `runs/x`, whose checkpoints are sampled every `npc_refresh_epochs` (self-play
    against a fixed run), or `self`: this training run's own earlier checkpoints."""
    npc_sampling: Literal["latest", "uniform"] = "latest"
    """With a run or `self`: play the latest checkpoint, or one drawn uniformly from the last
    `npc_last_k` (seeded)."""
    npc_last_k: int = Field(5, ge=1)
    npc_refresh_epochs: int = Field(10, ge=1)
    """Epochs between new draws of the NPCs' checkpoint (a run or `self`)."""

    @property
    def policy_agents(self) -> int:
        """Agents per env played by the policy (the first ones)."""
        return max(1, round(self.policy_agents_pct * self.num_agents))

    @field_validator("obs_width", "obs_height")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"observation size must be odd (3-15), got {value}")
        return value

    @field_validator("groups")
    @classmethod
    def _groups(cls, groups: dict[str, GroupConfig]) -> dict[str, GroupConfig]:
        if not groups:
            raise ValueError("at least one group is required")
        ids = [g.id for g in groups.values()]
        if len(set(ids)) != len(ids):
            raise ValueError(f"group ids must be unique, got {ids}")
        return groups

    @model_validator(mode="after")
    def _npcs(self) -> GameConfig:
        if self.policy_agents < self.num_agents and self.npc_policy_uri is None:
            raise ValueError(
                f"game.policy_agents_pct={self.policy_agents_pct} leaves "
                f"{self.num_agents - self.policy_agents} of {self.num_agents} agents to NPCs: set "
                "game.npc_policy_uri (scripted:greedy, scripted:random, scripted:noop, a policy "
                "URI, a run directory or self)")
        if self.npc_policy_uri is not None and self.policy_agents == self.num_agents:
            raise ValueError(
                f"game.npc_policy_uri is set but game.policy_agents_pct={self.policy_agents_pct} "
                f"of {self.num_agents} agents leaves no agent to NPCs; lower policy_agents_pct")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> GameConfig:
        room = self.map.room
        if isinstance(room, RandomRoomConfig):
            placed = room.agents + sum(room.objects.values())
            if placed > room.width * room.height:
                raise ValueError(
                    f"a {room.width}x{room.height} room has {room.width * room.height} cells but "
                    f"game.map.room places {room.agents} agents and {placed - room.agents} objects; "
                    "enlarge the room or place fewer objects"
                )
            unknown = sorted(set(room.objects) - set(self.objects))
            if unknown:
                raise ValueError(
                    f"map.room.objects names unknown object(s) {unknown}; "
                    f"defined objects: {sorted(self.objects)}"
                )
        else:
            missing = sorted({ASCII_SYMBOLS[c] for r in room.rows for c in r if c in ASCII_SYMBOLS}
                             - set(self.objects))
            if missing:
                raise ValueError(f"the ASCII map uses object(s) {missing} not in game.objects")
        per_room = room.agents
        if self.map.instances is None:
            self.map.instances = max(1, self.num_agents // max(per_room, 1))
        if per_room * self.map.instances != self.num_agents:
            raise ValueError(
                f"game.num_agents={self.num_agents} but the map holds {self.map.instances} "
                f"instance(s) x {per_room} agent(s) = {per_room * self.map.instances}; "
                "set game.map.instances or game.map.room.agents so that they match"
            )
        if not any(a.enabled for a in self.actions.__dict__.values()):
            raise ValueError("at least one action must be enabled")
        return self

    @property
    def agent_group(self) -> str:
        """The group every agent plays in (RULES.md "Maps"): the one with the lowest id, not the
        dict's first, which a config file read back (keys sorted) need not keep."""
        return min(self.groups, key=lambda name: self.groups[name].id)

    def group_agent_config(self, group: str) -> AgentConfig:
        """The resolved agent config of a group: defaults, then the group's explicit overrides."""
        return self.groups[group].props.apply(self.agent)
