"""Map generation (RULES.md "Maps"): the plain layout and the batched generator agree."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from pydantic import ValidationError
import torch

from heartgrid.config.game import AsciiRoomConfig, GameConfig, MapConfig, RandomRoomConfig
from heartgrid.engine.maps import MapError, build_layout, room_order, room_origins, room_plan
from heartgrid.engine.mapgen import MapGenerator
from heartgrid.engine.rng import STREAM_MAP, hash32
from heartgrid.engine.tables import compile_game
from heartgrid.recipes import get_recipe


def random_game(instances: int = 3, width: int = 5, height: int = 4, agents: int = 2,
                objects: dict | None = None, **map_fields) -> GameConfig:
    objects = {"mine_red": 2, "altar": 1, "block": 3} if objects is None else objects
    room = RandomRoomConfig(width=width, height=height, agents=agents, objects=objects)
    return GameConfig(num_agents=agents * instances,
                      map=MapConfig(room=room, instances=instances, **map_fields))


def test_rooms_in_a_near_square_grid_with_borders():
    game = random_game(instances=3, border_width=2, instance_border_width=1)
    assert game.map.grid_shape == (2 * 2 + 2 * 4 + 1, 2 * 2 + 2 * 5 + 1)  # 2 rows x 2 cols
    assert room_origins(game.map) == [(2, 2), (2, 8), (7, 2)]
    layout = build_layout(game, env_seed=11, episode=0)
    grid = layout.grid
    # Everything outside the three rooms is wall, including the unused fourth slot.
    for r, row in enumerate(grid):
        for c, name in enumerate(row):
            in_room = any(r0 <= r < r0 + 4 and c0 <= c < c0 + 5 for r0, c0 in room_origins(game.map))
            if not in_room:
                assert name == "wall", (r, c)
    for r0, c0 in room_origins(game.map):
        room = Counter(grid[r][c] for r in range(r0, r0 + 4) for c in range(c0, c0 + 5))
        assert room == Counter({None: 20 - 8, "agent": 2, "mine_red": 2, "altar": 1, "block": 3})


def test_random_room_places_by_hash_rank():
    game = random_game(instances=1, border_width=0, objects={"altar": 1})
    plan = room_plan(game)
    seed, episode = 5, 3
    scores = [hash32(seed, episode, STREAM_MAP, 0, cell) for cell in range(20)]
    order = sorted(range(20), key=lambda cell: (scores[cell], cell))
    assert room_order(plan, seed, episode, 0).tolist() == order
    layout = build_layout(game, seed, episode)
    # Ranks 0 and 1 hold the agents (numbered in rank order), rank 2 the altar.
    assert layout.agents == tuple(divmod(cell, 5) for cell in order[:2])
    r, c = divmod(order[2], 5)
    assert layout.grid[r][c] == "altar" and layout.converters == ((r, c, "altar"),)


def test_layout_is_reproducible_and_changes_with_episode_and_seed():
    game = random_game()
    assert build_layout(game, 1, 0) == build_layout(game, 1, 0)
    assert build_layout(game, 1, 0).grid != build_layout(game, 1, 1).grid
    assert build_layout(game, 1, 0).grid != build_layout(game, 2, 0).grid


def test_ascii_room_numbers_agents_in_reading_order_per_instance():
    room = AsciiRoomConfig(rows=["@.m", "_A#"])
    game = GameConfig(num_agents=4, map=MapConfig(room=room, instances=2, border_width=1))
    layout = build_layout(game, 0, 0)
    # Two instances: rows = ceil(sqrt(2)) = 2, cols = 1, so the second room is below the first.
    assert layout.agents == ((1, 1), (2, 2), (3, 1), (4, 2))
    assert layout.converters == (
        (1, 3, "mine_red"), (2, 1, "altar"), (3, 3, "mine_red"), (4, 1, "altar"))
    assert layout.type_ids(game)[2, 3] == game.objects["wall"].type_id


def test_room_too_small_is_refused_by_the_config_and_by_the_map_builder():
    with pytest.raises(ValidationError, match="a 3x2 room has 6 cells but game.map.room places 2 agents and 5 objects"):
        random_game(instances=1, width=3, height=2, agents=2, objects={"mine_red": 3, "wall": 2})
    # A config changed after validation (assignment checks the room alone) still fails clearly.
    game = random_game(instances=1, width=3, height=2, agents=2, objects={})
    game.map.room.objects = {"mine_red": 3, "wall": 2}
    with pytest.raises(MapError, match=r"3x2 has 6 cells .* 2 agents \+ 3 mine_red, 2 wall = 7"):
        build_layout(game, 0, 0)


def test_objects_sharing_a_type_id_are_refused():
    game = random_game()
    game.objects["altar"].type_id = game.objects["mine_red"].type_id
    with pytest.raises(MapError, match="share type_id"):
        room_plan(game)


GAMES = {
    "arena": lambda: get_recipe("arena_basic_easy_shaped").fn("cpu").game,
    "navigation_maze": lambda: get_recipe("navigation_maze").fn("cpu").game,
    "three_rooms": lambda: random_game(instances=3, border_width=1, instance_border_width=2),
}


@pytest.mark.parametrize("name", sorted(GAMES))
def test_batched_generator_matches_build_layout(name):
    game = GAMES[name]()
    tables = compile_game(game)
    pad = (3, 4)
    gen = MapGenerator(game, pad, num_features=2, type_channel=0, swappable_channel=1,
                       device=torch.device("cpu"))
    seeds = torch.tensor([3, 3, 1234567])
    episodes = torch.tensor([0, 5, 2])
    k = len(seeds)
    rank_cells = gen.rank_cells(seeds, episodes, torch.full((k,), tables.shuffled))
    planes = torch.zeros(k, gen.cells_per_env, 2, dtype=torch.uint8)
    codes = torch.as_tensor(tables.rank_code).expand(k, -1)
    swaps = torch.as_tensor(tables.rank_swappable).expand(k, -1)
    gen.paint(planes, torch.arange(k), rank_cells, codes, swaps)
    height, width = game.map.grid_shape
    for i in range(k):
        layout = build_layout(game, int(seeds[i]), int(episodes[i]))
        expected = layout.type_ids(game).astype(np.int64) + 1  # empty (-1) -> 0
        grid = planes[i, :, 0].view(gen.padded_height, gen.padded_width).numpy()
        np.testing.assert_array_equal(grid[pad[0]:pad[0] + height, pad[1]:pad[1] + width], expected)
        assert (grid[: pad[0]] == 2).all() and (grid[:, : pad[1]] == 2).all()  # outside: walls
        # Agents: rank agent_rank[a] of each instance, numbered instance by instance.
        agent_rank = torch.as_tensor(tables.agent_rank).expand(game.map.instances, -1)
        cells = rank_cells[i].gather(1, agent_rank)
        rows = (cells.view(-1) // gen.padded_width - pad[0]).tolist()
        cols = (cells.view(-1) % gen.padded_width - pad[1]).tolist()
        assert list(zip(rows, cols)) == list(layout.agents)
        swappable = planes[i, :, 1].view(gen.padded_height, gen.padded_width).numpy()
        blocks = np.array([[n == "block" for n in row] for row in layout.grid])
        np.testing.assert_array_equal(swappable[pad[0]:pad[0] + height, pad[1]:pad[1] + width], blocks)
