"""Procedural rooms: seeded generators that draw an ASCII room (`AsciiRoomConfig.rows`).

    rows = maze_room(width=15, height=15, seed=7, agents=1, altars=3)
    rows = radial_room(size=21, arms=6, seed=7, altars=4)
    rows = scatter_room(width=21, height=21, seed=7, altars=4, mean_distance=8.0)

Why ASCII rows and not a new room kind: an ASCII room is already a map both engines build cell
for cell (maps.py, mapgen.py), so a generated room needs no new engine code and can be shown,
saved to a `.map` file and played again exactly. A generator returns the same rows for the same
arguments on every machine: its only randomness is `rng.hash32(seed, STREAM_PROCGEN, counter)`
(no NumPy or Python generator whose algorithm could change between versions).

Every generated room is closed by walls on its outer rows and columns, and every altar can be
reached from every agent (tests/engine/test_engine_mapgen.py checks it by flood fill).
"""

from __future__ import annotations

import math
from collections import deque

from heartgrid.engine.rng import hash32

# The purpose key of generator draws (rng.py keeps the engine's own streams; this one is only
# used here, so it cannot collide with a draw of the game itself).
STREAM_PROCGEN = 0x50524F00

WALL, EMPTY, AGENT, ALTAR = "#", ".", "@", "_"
Cell = tuple[int, int]


class ProcgenError(ValueError):
    """Generator arguments that cannot give a valid room (too small, too many objects)."""


class HashRandom:
    """Uniform draws from `hash32(seed, STREAM_PROCGEN, n)`, n = 0, 1, 2, ..."""

    def __init__(self, seed: int):
        self.seed, self.count = seed, 0

    def below(self, n: int) -> int:
        """An integer in [0, n) (the modulo bias of a 32-bit draw is below 1e-5 for n < 50,000)."""
        draw = int(hash32(self.seed, STREAM_PROCGEN, self.count))
        self.count += 1
        return draw % n

    def uniform(self) -> float:
        """A float in [0, 1)."""
        return self.below(1 << 24) / float(1 << 24)

    def shuffle(self, items: list) -> list:
        """Fisher-Yates, in place; returns `items`."""
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]
        return items


# --------------------------------------------------------------------------------------------
# Shared helpers


def _canvas(height: int, width: int, fill: str) -> list[list[str]]:
    grid = [[fill] * width for _ in range(height)]
    for r in range(height):
        grid[r][0] = grid[r][width - 1] = WALL
    grid[0] = [WALL] * width
    grid[height - 1] = [WALL] * width
    return grid


def _rows(grid: list[list[str]]) -> list[str]:
    return ["".join(row) for row in grid]


def reachable(grid: list[list[str]] | list[str], start: Cell) -> set[Cell]:
    """Cells reachable from `start` by 4-way steps through cells that are not walls or blocks
    (agents and altars stop a walker too, but only where they stand: an altar is reached when
    the agent stands next to it, so altar cells are included, never passed through)."""
    height, width = len(grid), len(grid[0])
    seen = {start}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nr, nc = r + dr, c + dc
            if not (0 <= nr < height and 0 <= nc < width) or (nr, nc) in seen:
                continue
            symbol = grid[nr][nc]
            if symbol in (WALL, "s"):
                continue
            seen.add((nr, nc))
            if symbol != ALTAR:  # stand next to an altar; never walk through one
                queue.append((nr, nc))
    return seen


def _empty_cells(grid: list[list[str]]) -> list[Cell]:
    return [(r, c) for r, row in enumerate(grid) for c, s in enumerate(row) if s == EMPTY]


def _check_size(name: str, value: int, low: int) -> None:
    if value < low:
        raise ProcgenError(f"{name} must be at least {low}, got {value}")


def _place(grid: list[list[str]], cells: list[Cell], symbol: str, count: int, what: str) -> None:
    if count > len(cells):
        raise ProcgenError(f"room has room for {len(cells)} {what}(s), asked for {count}; "
                           "enlarge the room or ask for fewer")
    for r, c in cells[:count]:
        grid[r][c] = symbol


# --------------------------------------------------------------------------------------------
# Maze


def maze_room(width: int, height: int, seed: int, *, agents: int = 1, altars: int = 3,
              loops: float = 0.0) -> list[str]:
    """A perfect maze (depth-first carving) on the odd cells of a width x height room (both odd,
    >= 5); `loops` in [0, 1] opens that share of the remaining inner walls between two corridor
    cells (0: exactly one path between any two cells). Agents start on random corridor cells;
    altars go to dead ends first (the far ends a navigator must search), then random cells."""
    for name, value in (("width", width), ("height", height)):
        _check_size(name, value, 5)
        if value % 2 == 0:
            raise ProcgenError(f"maze {name} must be odd (walls and corridors alternate), got {value}")
    if not 0.0 <= loops <= 1.0:
        raise ProcgenError(f"loops must be in [0, 1], got {loops}")
    rand = HashRandom(seed)
    grid = [[WALL] * width for _ in range(height)]
    start = (1 + 2 * rand.below((height - 1) // 2), 1 + 2 * rand.below((width - 1) // 2))
    grid[start[0]][start[1]] = EMPTY
    stack = [start]
    while stack:
        r, c = stack[-1]
        options = [(r + dr, c + dc, r + dr // 2, c + dc // 2)
                   for dr, dc in ((-2, 0), (2, 0), (0, -2), (0, 2))
                   if 0 < r + dr < height - 1 and 0 < c + dc < width - 1
                   and grid[r + dr][c + dc] == WALL]
        if not options:
            stack.pop()
            continue
        nr, nc, wr, wc = options[rand.below(len(options))]
        grid[wr][wc] = grid[nr][nc] = EMPTY
        stack.append((nr, nc))
    if loops > 0:
        inner = [(r, c) for r in range(1, height - 1) for c in range(1, width - 1)
                 if grid[r][c] == WALL and (r % 2) != (c % 2)]
        for r, c in rand.shuffle(inner)[: round(loops * len(inner))]:
            grid[r][c] = EMPTY
    cells = rand.shuffle(_empty_cells(grid))
    _place(grid, cells, AGENT, agents, "agent")
    cells = cells[agents:]
    dead_ends = [cell for cell in cells if _open_neighbours(grid, cell) == 1]
    rest = [cell for cell in cells if cell not in set(dead_ends)]
    _place(grid, dead_ends + rest, ALTAR, altars, "altar")
    return _rows(grid)


def _open_neighbours(grid: list[list[str]], cell: Cell) -> int:
    r, c = cell
    return sum(grid[r + dr][c + dc] != WALL for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)))


# --------------------------------------------------------------------------------------------
# Radial arms


def radial_room(size: int, arms: int, seed: int, *, agents: int = 1, altars: int | None = None,
                hub: int = 1) -> list[str]:
    """Corridors from a central hub (a square of half-width `hub`) to the walls of a size x size
    room, at `arms` evenly spaced angles turned by a random offset; agents start in the hub,
    altars at the ends of `altars` randomly chosen arms (default: every arm). The navigator
    must search arm after arm and come back through the hub."""
    _check_size("size", size, 7)
    _check_size("arms", arms, 1)
    altars = arms if altars is None else altars
    if altars > arms:
        raise ProcgenError(f"radial room has {arms} arms, one altar per arm at most; got {altars}")
    rand = HashRandom(seed)
    grid = [[WALL] * size for _ in range(size)]
    centre = size // 2
    for r in range(centre - hub, centre + hub + 1):
        for c in range(centre - hub, centre + hub + 1):
            grid[r][c] = EMPTY
    offset = rand.uniform() * 2 * math.pi / arms
    reach = centre - 1
    ends: list[Cell] = []
    for k in range(arms):
        angle = offset + 2 * math.pi * k / arms
        end = (centre + round(reach * math.sin(angle)), centre + round(reach * math.cos(angle)))
        for r, c in _line((centre, centre), end):
            grid[r][c] = EMPTY
        ends.append(end)
    # Two arms may end on the same cell in a small room; each end holds one altar.
    ends = list(dict.fromkeys(ends))
    _place(grid, rand.shuffle(ends), ALTAR, altars, "arm end")
    hub_cells = rand.shuffle([cell for cell in _empty_cells(grid)
                              if max(abs(cell[0] - centre), abs(cell[1] - centre)) <= hub])
    _place(grid, hub_cells, AGENT, agents, "hub cell")
    return _rows(grid)


def _line(start: Cell, end: Cell) -> list[Cell]:
    """4-connected cells from start to end (a Bresenham line with a step added at each
    diagonal move, so a walker that moves only up, down, left and right can follow it)."""
    (r, c), (r1, c1) = start, end
    dr, dc = abs(r1 - r), abs(c1 - c)
    sr, sc = (1 if r1 > r else -1), (1 if c1 > c else -1)
    err = dc - dr
    cells = [(r, c)]
    while (r, c) != (r1, c1):
        if 2 * err > -dr and c != c1 and (2 * err >= dc or r == r1):
            err -= dr
            c += sc
        else:
            err += dc
            r += sr
        cells.append((r, c))
    return cells


# --------------------------------------------------------------------------------------------
# Scattered altars


def scatter_room(width: int, height: int, seed: int, *, agents: int = 1, altars: int = 4,
                 mean_distance: float = 8.0, obstacles: float = 0.0) -> list[str]:
    """An open room with `obstacles` (a share of its inner cells) as scattered walls; agents
    start near the centre; each altar is placed at a distance drawn uniformly from
    [mean_distance / 2, 3 * mean_distance / 2] (Euclidean, from the first agent), on the free
    cell closest to that distance, so altars lie at `mean_distance` on average (as far as the
    room allows). With the observation window of 11 cells, a mean distance above 5 puts most
    altars out of sight of the start. Obstacles and altars never cut the free cells in two."""
    _check_size("width", width, 3)
    _check_size("height", height, 3)
    if not 0.0 <= obstacles < 0.6:
        raise ProcgenError(f"obstacles must be in [0, 0.6), got {obstacles}")
    if mean_distance <= 0:
        raise ProcgenError(f"mean_distance must be positive, got {mean_distance}")
    rand = HashRandom(seed)
    grid = _canvas(height, width, EMPTY)
    centre = (height // 2, width // 2)
    near_centre = sorted(_empty_cells(grid), key=lambda cell: (_dist(cell, centre), cell))
    _place(grid, near_centre, AGENT, agents, "agent")
    origin = near_centre[0]
    inner = rand.shuffle(_empty_cells(grid))
    for r, c in inner[: round(obstacles * len(inner))]:
        grid[r][c] = WALL
        if not _connected(grid, origin):
            grid[r][c] = EMPTY  # a wall here would cut the room in two: leave it open
    for placed in range(altars):
        target = mean_distance * (0.5 + rand.uniform())
        free = _empty_cells(grid)
        keys = {cell: (round(abs(_dist(cell, origin) - target), 9), rand.below(1 << 30)) for cell in free}
        for r, c in sorted(free, key=keys.__getitem__):
            grid[r][c] = ALTAR
            if _connected(grid, origin):
                break
            grid[r][c] = EMPTY
        else:
            raise ProcgenError(f"scatter room has no free cell left for altar {placed + 1} of "
                               f"{altars}; enlarge the room or lower obstacles")
    return _rows(grid)


def _dist(a: Cell, b: Cell) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _connected(grid: list[list[str]], origin: Cell) -> bool:
    """Every cell a walker can stand on (empty or agent) is reachable from `origin`."""
    standing = {(r, c) for r, row in enumerate(grid) for c, s in enumerate(row) if s in (EMPTY, AGENT)}
    return standing <= reachable(grid, origin)
