"""Map generation (RULES.md "Maps", SPEC §1.7), shared by both engines.

A map is `map.instances` copies of one room, laid out row-major in a near-square grid
(rows = ceil(sqrt(n)), cols = ceil(n / rows)), separated by `instance_border_width` wall cells
and surrounded by `border_width` wall cells. Every cell that no room covers is a wall (the
borders, and the unused slots of the layout when n < rows x cols).

Both room kinds are described the same way, by a `RoomPlan`: an *order* of the room's cells
and the content of the k-th cell of that order (its *rank* k):

- random room: the cells are ordered by `(hash32(env_seed, episode, STREAM_MAP, instance,
  cell_index), cell_index)`, cell_index = row * width + col inside the room; ranks
  0 .. agents-1 hold agents, the next ranks the objects of `room.objects` by increasing
  type id (each name repeated by its count; not the dict's order, which a config file read
  back does not keep), the rest stay empty;
- ASCII room: the order is the reading order and rank k holds what the ASCII text has there.

Agents are numbered instance by instance, then by rank (placement order for random rooms,
reading order for ASCII rooms). That one rule serves `build_layout` (one env, plain Python:
what `reference.py` uses) and the batched generator of the tensor engine (`mapgen.py`), which
must agree cell for cell (tests/engine/test_engine_maps.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from heartgrid.config.game import (
    ASCII_SYMBOLS,
    AsciiRoomConfig,
    ConverterConfig,
    GameConfig,
    MapConfig,
    RandomRoomConfig,
    WallConfig,
)
from heartgrid.config.items import TYPE_IDS
from heartgrid.engine.rng import STREAM_MAP, hash32

AGENT = "agent"
WALL = "wall"


class MapError(ValueError):
    """A map that cannot be built (for example a room too small for its objects)."""


# --------------------------------------------------------------------------------------------
# Geometry


def room_shape(map_cfg: MapConfig) -> tuple[int, int]:
    """(height, width) of one room."""
    room = map_cfg.room
    if isinstance(room, AsciiRoomConfig):
        return len(room.rows), len(room.rows[0])
    return room.height, room.width


def room_origins(map_cfg: MapConfig) -> list[tuple[int, int]]:
    """Grid (row, col) of the top-left cell of each instance's room, in instance order."""
    height, width = room_shape(map_cfg)
    rows = math.ceil(math.sqrt(map_cfg.instances))
    cols = math.ceil(map_cfg.instances / rows)
    step_r = height + map_cfg.instance_border_width
    step_c = width + map_cfg.instance_border_width
    b = map_cfg.border_width
    return [(b + (i // cols) * step_r, b + (i % cols) * step_c) for i in range(map_cfg.instances)]


# --------------------------------------------------------------------------------------------
# Objects


def object_config(game: GameConfig, name: str) -> WallConfig | ConverterConfig:
    """The config of a map object by name. The borders use "wall"; a game that defines no
    "wall" object gets a plain, non-swappable wall of type id 1 there."""
    if name in game.objects:
        return game.objects[name]
    if name == WALL:
        return WallConfig(type_id=TYPE_IDS[WALL])
    raise MapError(f"object {name!r} is not defined in game.objects ({sorted(game.objects)})")


def check_objects(game: GameConfig) -> None:
    """Refuse object sets the engines cannot tell apart: each object needs its own type id
    (cells and observations identify objects by type id) and no object may be named "agent"."""
    if AGENT in game.objects:
        raise MapError('"agent" is reserved for agents; rename that entry of game.objects')
    seen: dict[int, str] = {TYPE_IDS[AGENT]: AGENT}
    if WALL not in game.objects:
        seen[TYPE_IDS[WALL]] = WALL
    for name, obj in game.objects.items():
        if obj.type_id in seen:
            raise MapError(
                f"game.objects {seen[obj.type_id]!r} and {name!r} share type_id {obj.type_id}; "
                "give each object its own type_id"
            )
        seen[obj.type_id] = name


# --------------------------------------------------------------------------------------------
# Room plans


@dataclass(frozen=True)
class RoomPlan:
    """What a room holds, by rank (see the module docstring).

    `rank_names[k]` is "agent", an object name or None (empty) for the cell of rank k;
    `shuffled` is True for random rooms (hash order) and False for ASCII rooms (reading order).
    """

    height: int
    width: int
    shuffled: bool
    rank_names: tuple[str | None, ...]

    @property
    def num_agents(self) -> int:
        return sum(1 for name in self.rank_names if name == AGENT)


def room_plan(game: GameConfig) -> RoomPlan:
    """The room plan of a game; MapError if a random room cannot hold its agents and objects."""
    check_objects(game)
    room = game.map.room
    height, width = room_shape(game.map)
    cells = height * width
    if isinstance(room, AsciiRoomConfig):
        names: list[str | None] = []
        for row in room.rows:
            for symbol in row:
                if symbol in ("@", "A"):
                    names.append(AGENT)
                else:
                    names.append(ASCII_SYMBOLS.get(symbol))  # "." -> None
        return RoomPlan(height, width, False, tuple(names))
    assert isinstance(room, RandomRoomConfig)
    needed = room.agents + sum(room.objects.values())
    if needed > cells:
        counts = ", ".join(f"{n} {name}" for name, n in room.objects.items())
        raise MapError(
            f"random room {room.width}x{room.height} has {cells} cells but must hold "
            f"{room.agents} agents + {counts or 'no objects'} = {needed} things; enlarge "
            "map.room.width/height or reduce map.room.agents/objects"
        )
    names = [AGENT] * room.agents
    # By type id, not in the dict's order: a config read back from a file (keys sorted) must
    # place the same objects in the same cells as the recipe it was written from.
    for name in sorted(room.objects, key=lambda n: object_config(game, n).type_id):
        names += [name] * room.objects[name]
    names += [None] * (cells - needed)
    return RoomPlan(height, width, True, tuple(names))


def room_order(plan: RoomPlan, env_seed: int, episode: int, instance: int) -> np.ndarray:
    """Cell indices (row * width + col inside the room) by rank, for one instance."""
    cells = np.arange(plan.height * plan.width, dtype=np.int64)
    if not plan.shuffled:
        return cells
    scores = hash32(env_seed, episode, STREAM_MAP, instance, cells)
    return np.lexsort((cells, scores))  # by score, ties by cell index


# --------------------------------------------------------------------------------------------
# One env's layout (plain data)


@dataclass(frozen=True)
class MapLayout:
    """The initial layout of one env's episode.

    grid:       grid[row][col] = "agent", an object name (a key of game.objects, or "wall" for
                borders) or None for an empty cell; shape = game.map.grid_shape.
    agents:     (row, col) of each agent in numbering order (agent i of the env). All agents
                start facing up (0), color 0, in the group with the lowest id, with empty inventories.
    converters: (row, col, name) of each converter, in row-major order. Converters start
                idle holding `initial_resource_count` of each of their output items.
    """

    grid: tuple[tuple[str | None, ...], ...]
    agents: tuple[tuple[int, int], ...]
    converters: tuple[tuple[int, int, str], ...]

    def type_ids(self, game: GameConfig) -> np.ndarray:
        """int16 [H, W]: the type id at each cell, -1 where empty (agents have type id 0)."""
        out = np.full((len(self.grid), len(self.grid[0])), -1, dtype=np.int16)
        for r, row in enumerate(self.grid):
            for c, name in enumerate(row):
                if name == AGENT:
                    out[r, c] = TYPE_IDS[AGENT]
                elif name is not None:
                    out[r, c] = object_config(game, name).type_id
        return out


def build_layout(game: GameConfig, env_seed: int, episode: int) -> MapLayout:
    """The layout of episode `episode` of the env seeded `env_seed` (RULES.md "Maps").

    Raises MapError when a random room is too small for its agents and objects, or when two
    objects share a type id.
    """
    plan = room_plan(game)
    height, width = game.map.grid_shape
    grid: list[list[str | None]] = [[WALL] * width for _ in range(height)]
    agents: list[tuple[int, int]] = []
    for instance, (r0, c0) in enumerate(room_origins(game.map)):
        order = room_order(plan, env_seed, episode, instance)
        for rank, cell in enumerate(order.tolist()):
            r, c = r0 + cell // plan.width, c0 + cell % plan.width
            name = plan.rank_names[rank]
            grid[r][c] = name
            if name == AGENT:
                agents.append((r, c))
    converters = tuple(
        (r, c, name)
        for r, row in enumerate(grid)
        for c, name in enumerate(row)
        if name is not None and name != AGENT and isinstance(object_config(game, name), ConverterConfig)
    )
    return MapLayout(tuple(tuple(row) for row in grid), tuple(agents), converters)
