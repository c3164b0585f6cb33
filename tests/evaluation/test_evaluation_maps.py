"""The navigation maps shipped in the package: valid, each with its time limit, every altar
reachable, and each true to the skill its name claims (in sight or out of sight of the start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from heartgrid.engine.procgen import reachable
from heartgrid.evaluation.map_files import MAPS_DIR, MapFileError, load_map, read_map_file, shipped_map_names

NAVIGATION = shipped_map_names("navigation")
SIGHT = 5  # half the 11-cell observation window of the navigation game


def positions(rows: tuple[str, ...], symbol: str) -> list[tuple[int, int]]:
    return [(r, c) for r, row in enumerate(rows) for c, s in enumerate(row) if s == symbol]


def in_sight(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return max(abs(a[0] - b[0]), abs(a[1] - b[1])) <= SIGHT


def test_at_least_twelve_maps_with_their_own_time_limits():
    assert len(NAVIGATION) >= 12
    maps = [load_map(name) for name in NAVIGATION]
    assert len({m.max_steps for m in maps}) >= 6  # each map's limit is its own, not one default
    for skill in ("emptyspace_outofsight", "walls_withinsight", "corridors", "maze_small", "maze_large",
                  "radial", "obstacles", "labyrinth", "walkaround", "memory"):
        assert f"navigation/{skill}" in NAVIGATION


@pytest.mark.parametrize("name", NAVIGATION)
def test_every_altar_is_reachable_from_every_agent(name: str):
    found = load_map(name)
    assert found.description and found.max_steps >= 50 and found.altars >= 1
    for start in positions(found.rows, "@"):
        assert set(positions(found.rows, "_")) <= reachable(list(found.rows), start), start


@pytest.mark.parametrize("name", [n for n in NAVIGATION if "outofsight" in n or n.endswith(("walkaround", "wanderout", "labyrinth", "maze_small", "maze_large"))])
def test_out_of_sight_maps_show_no_altar_at_the_start(name: str):
    found = load_map(name)
    for agent in positions(found.rows, "@"):
        assert not any(in_sight(agent, altar) for altar in positions(found.rows, "_")), name


def test_in_sight_and_memory_maps_show_their_altars_at_the_start():
    for name in ("navigation/emptyspace_withinsight", "navigation/walls_withinsight"):
        found = load_map(name)
        (agent,) = positions(found.rows, "@")
        assert all(in_sight(agent, altar) for altar in positions(found.rows, "_")), name
    memory = load_map("navigation/memory")
    (agent,), (altar,) = positions(memory.rows, "@"), positions(memory.rows, "_")
    assert in_sight(agent, altar)
    # ... but every way round the wall leaves it out of sight: the wall's openings are far.
    gaps = [(r, c) for r, c in reachable(list(memory.rows), agent) if r == agent[0] + 2]
    assert gaps and not any(in_sight(gap, altar) for gap in gaps)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "room.map"
    path.write_text(text)
    return path


def test_the_header_is_checked_like_a_config(tmp_path: Path):
    with pytest.raises(MapFileError, match=r"unknown header key 'max_step'; did you mean 'max_steps'"):
        read_map_file(write(tmp_path, "max_step: 10\ndescription: x\n\n###\n#@#\n###\n"))
    with pytest.raises(MapFileError, match="missing header line"):
        read_map_file(write(tmp_path, "description: x\n\n###\n#@#\n###\n"))
    with pytest.raises(MapFileError, match="max_steps must be a whole number"):
        read_map_file(write(tmp_path, "max_steps: soon\ndescription: x\n\n###\n#@#\n###\n"))
    with pytest.raises(MapFileError, match="not a valid map: ASCII map rows must be non-empty and all the same length"):
        read_map_file(write(tmp_path, "max_steps: 9\ndescription: x\n\n###\n#@##\n###\n"))
    with pytest.raises(MapFileError, match="holds no agent"):
        read_map_file(write(tmp_path, "max_steps: 9\ndescription: x\n\n###\n#_#\n###\n"))
    found = read_map_file(write(tmp_path, "max_steps: 9\ndescription: a room\n\n####\n#@_#\n####\n"))
    assert (found.max_steps, found.agents, found.altars, found.rows[1]) == (9, 1, 1, "#@_#")


def test_a_map_is_a_shipped_name_or_a_path(tmp_path: Path):
    assert load_map("navigation/corridors").path == MAPS_DIR / "navigation" / "corridors.map"
    path = write(tmp_path, "max_steps: 9\ndescription: a room\n\n####\n#@_#\n####\n")
    assert load_map("room.map", base_dir=tmp_path).rows == load_map(str(path)).rows
    with pytest.raises(MapFileError, match="did you mean 'navigation/corridors'"):
        load_map("navigation/coridors")
