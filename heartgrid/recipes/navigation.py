"""Navigation (SPEC §1.8): 4 agents find altars that start full; move, rotate and get only."""

from __future__ import annotations

from heartgrid.config.game import (
    AsciiRoomConfig,
    GameConfig,
    MapConfig,
    RandomRoomConfig,
)
from heartgrid.config.run import RunConfig
from heartgrid.recipes.common import evaluation_for, trainer_for
from heartgrid.recipes.registry import recipe

NAVIGATION_MAZE = [
    "###############",
    "#@...#.....#._#",
    "#.##.#.###.#..#",
    "#.#..._..#...##",
    "#.#.####.###..#",
    "#@..#....._#..#",
    "###.#.####.#.##",
    "#_..#..@.#....#",
    "#.####.###.##.#",
    "#......#_..#@.#",
    "###############",
]


def navigation_game(room) -> GameConfig:
    game = GameConfig(
        num_agents=4,
        max_steps=500,
        map=MapConfig(room=room, instances=1, border_width=1),
    )
    for name in ("noop", "put_items", "attack", "swap"):
        getattr(game.actions, name).enabled = False
    altar = game.objects["altar"]
    altar.initial_resource_count = 1
    altar.cooldown = 255
    game.agent.rewards = {"heart": 1.0}
    return game


@recipe("navigation")
def navigation(device: str) -> RunConfig:
    """4 agents in a random 21x21 room with walls, finding altars that start with a heart."""
    room = RandomRoomConfig(width=21, height=21, agents=4, objects={"altar": 6, "wall": 60})
    game = navigation_game(room)
    return RunConfig(run="navigation", recipe="navigation", game=game,
                     trainer=trainer_for(device, game.num_agents), evaluation=evaluation_for(device, "navigation"))


@recipe("navigation_maze")
def navigation_maze(device: str) -> RunConfig:
    """Navigation on a fixed ASCII maze with 4 agents and 4 full altars."""
    game = navigation_game(AsciiRoomConfig(rows=NAVIGATION_MAZE))
    return RunConfig(run="navigation_maze", recipe="navigation_maze", game=game,
                     trainer=trainer_for(device, game.num_agents), evaluation=evaluation_for(device, "navigation"))
