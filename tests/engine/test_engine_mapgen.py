"""Procedural rooms (engine/procgen.py): seeded, closed, every altar reachable, and playable by
both engines' map builders."""

from __future__ import annotations

import math
import statistics

import pytest

from heartgrid.config.game import AsciiRoomConfig, GameConfig, MapConfig
from heartgrid.engine.maps import build_layout
from heartgrid.engine.procgen import (
    HashRandom,
    ProcgenError,
    maze_room,
    radial_room,
    reachable,
    scatter_room,
)


def cells(rows: list[str], symbol: str) -> list[tuple[int, int]]:
    return [(r, c) for r, row in enumerate(rows) for c, s in enumerate(row) if s == symbol]


def check_room(rows: list[str], agents: int, altars: int) -> None:
    """Rectangular, valid symbols, closed by walls, the asked counts, every altar reachable."""
    AsciiRoomConfig(rows=rows)
    assert set(rows[0]) == set(rows[-1]) == {"#"}
    assert all(row[0] == row[-1] == "#" for row in rows)
    assert len(cells(rows, "@")) == agents and len(cells(rows, "_")) == altars
    for start in cells(rows, "@"):
        seen = reachable(rows, start)
        assert set(cells(rows, "_")) <= seen, (start, "\n".join(rows))


def test_hash_random_is_a_pure_function_of_the_seed():
    a, b = HashRandom(7), HashRandom(7)
    assert [a.below(100) for _ in range(20)] == [b.below(100) for _ in range(20)]
    assert [HashRandom(8).below(1000) for _ in range(5)] != [HashRandom(7).below(1000) for _ in range(5)]
    assert HashRandom(3).shuffle(list(range(10))) == HashRandom(3).shuffle(list(range(10)))
    assert sorted(HashRandom(3).shuffle(list(range(10)))) == list(range(10))


@pytest.mark.parametrize("seed", range(6))
def test_maze_is_a_perfect_maze_with_altars_at_dead_ends(seed: int):
    rows = maze_room(15, 11, seed, agents=1, altars=3)
    check_room(rows, 1, 3)
    assert rows == maze_room(15, 11, seed, agents=1, altars=3)  # same seed, same room
    open_cells = {(r, c) for r, row in enumerate(rows) for c, s in enumerate(row) if s != "#"}
    edges = sum((r + 1, c) in open_cells for r, c in open_cells) + sum((r, c + 1) in open_cells for r, c in open_cells)
    assert edges == len(open_cells) - 1  # a tree: exactly one path between any two cells
    for r, c in cells(rows, "_"):  # dead ends: one open neighbour
        assert sum((r + dr, c + dc) in open_cells for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))) == 1


def test_maze_seeds_differ_and_loops_open_walls():
    assert maze_room(21, 21, 1) != maze_room(21, 21, 2)
    perfect = sum(row.count("#") for row in maze_room(21, 21, 5, loops=0.0))
    braided = sum(row.count("#") for row in maze_room(21, 21, 5, loops=0.3))
    assert braided < perfect
    check_room(maze_room(21, 21, 5, agents=2, altars=4, loops=0.3), 2, 4)


def test_maze_refuses_even_or_tiny_sizes():
    with pytest.raises(ProcgenError, match="width must be odd"):
        maze_room(10, 11, 0)
    with pytest.raises(ProcgenError, match="height must be at least 5"):
        maze_room(11, 3, 0)
    with pytest.raises(ProcgenError, match="asked for 500"):
        maze_room(7, 7, 0, altars=500)


@pytest.mark.parametrize("seed", range(4))
def test_radial_arms_lead_from_the_hub_to_altars(seed: int):
    rows = radial_room(21, 6, seed, altars=4)
    check_room(rows, 1, 4)
    centre = 21 // 2
    (r, c), = cells(rows, "@")
    assert max(abs(r - centre), abs(c - centre)) <= 1  # starts in the hub
    for ar, ac in cells(rows, "_"):  # altars far out, at arm ends
        assert math.hypot(ar - centre, ac - centre) >= centre - 2
    with pytest.raises(ProcgenError, match="one altar per arm"):
        radial_room(21, 3, seed, altars=4)


def test_scatter_places_altars_at_the_mean_distance():
    distances = []
    for seed in range(12):
        rows = scatter_room(25, 25, seed, altars=4, mean_distance=7.0, obstacles=0.1)
        check_room(rows, 1, 4)
        (start,) = cells(rows, "@")
        distances += [math.dist(start, altar) for altar in cells(rows, "_")]
    assert statistics.mean(distances) == pytest.approx(7.0, abs=0.6)
    assert min(distances) >= 7.0 / 2 - 1 and max(distances) <= 7.0 * 1.5 + 1


def test_scatter_obstacles_never_cut_the_room():
    rows = scatter_room(15, 15, 3, agents=3, altars=5, mean_distance=4.0, obstacles=0.5)
    check_room(rows, 3, 5)
    standing = set(cells(rows, ".")) | set(cells(rows, "@"))
    assert standing <= reachable(rows, cells(rows, "@")[0])


def test_a_generated_room_is_a_map_the_engine_builds():
    rows = maze_room(11, 11, 4, agents=2, altars=2)
    game = GameConfig(num_agents=2, map=MapConfig(room=AsciiRoomConfig(rows=rows), instances=1, border_width=1))
    layout = build_layout(game, env_seed=0, episode=0)
    assert len(layout.agents) == 2 and len(layout.converters) == 2
    assert [name for _, _, name in layout.converters] == ["altar", "altar"]
