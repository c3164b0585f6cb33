"""The suites HeartGrid ships: `arena`, `navigation` and `procgen` (generated navigation maps).

- `arena`: the four arena recipes' own games (24 agents, 1000 steps). Score: hearts per agent
  per episode (`heart.get`) divided by 20, the reference system's trained agent (SPEC §1.8:
  "about 20 hearts per episode"), so 1.0 means "as good as the reference". Hearts rather than
  reward, because the shaped recipes pay for ore and batteries too: hearts are the one
  currency all four share.
- `navigation`: the hand-made maps in `maps/navigation/`, each with its own time limit, played
  on the `navigation_maze` game (move, rotate, get_items; altars that start with a heart and
  never refill). Score: share of the map's hearts collected (references.py).
- `procgen`: navigation on rooms generated per episode from the episode's seed (mazes of two
  sizes, radial arms, altars scattered near and far), so a policy cannot have memorised them.
"""

from __future__ import annotations

from collections.abc import Callable

from heartgrid.evaluation.map_files import load_map, shipped_map_names
from heartgrid.evaluation.simulation import (
    MazeGeneratorConfig,
    RadialGeneratorConfig,
    ScatterGeneratorConfig,
    SimulationConfig,
    SuiteConfig,
)

ARENA_REFERENCE_HEARTS = 20.0
NAVIGATION_RECIPE = "navigation_maze"


def arena_suite() -> SuiteConfig:
    recipes = [
        ("basic", "arena", "altar needs 3 batteries; reward only for hearts"),
        ("basic_easy_shaped", "arena_basic_easy_shaped", "the default training game: easy altar, shaped rewards"),
        ("combat", "arena_combat", "easy shaped arena with a lasery and an armory per room"),
        ("advanced", "arena_advanced", "combat arena plus a lab, a factory and a temple per room"),
    ]
    sims = [
        SimulationConfig(category="arena", name=name, recipe=recipe, description=text, episodes=8,
                         metric="heart.get", reference=ARENA_REFERENCE_HEARTS)
        for name, recipe, text in recipes
    ]
    return SuiteConfig(name="arena", description="the arena recipes' games; hearts per agent / 20",
                       simulations=sims)


def navigation_suite() -> SuiteConfig:
    sims = []
    for ref in shipped_map_names("navigation"):
        name = ref.split("/", 1)[1]
        sims.append(SimulationConfig(category="navigation", name=name, recipe=NAVIGATION_RECIPE,
                                     map=ref, description=load_map(ref).description, episodes=16))
    return SuiteConfig(name="navigation", description="hand-made navigation maps; share of hearts collected",
                       simulations=sims)


def procgen_suite() -> SuiteConfig:
    def sim(name: str, text: str, generator, max_steps: int) -> SimulationConfig:
        return SimulationConfig(category="procgen", name=name, recipe=NAVIGATION_RECIPE, description=text,
                                generator=generator, max_steps=max_steps, episodes=16)

    sims = [
        sim("maze_small", "11x11 maze drawn per episode, 2 altars at dead ends",
            MazeGeneratorConfig(width=11, height=11, altars=2), 150),
        sim("maze_large", "21x21 maze with a few loops drawn per episode, 4 altars",
            MazeGeneratorConfig(width=21, height=21, altars=4, loops=0.05), 400),
        sim("radial", "6 arms at random angles from a hub, altars at the ends of 4",
            RadialGeneratorConfig(size=21, arms=6, altars=4), 300),
        sim("scatter_near", "open room, 4 altars at 4 cells on average (mostly in sight)",
            ScatterGeneratorConfig(width=21, height=21, altars=4, mean_distance=4.0), 120),
        sim("scatter_far", "room with 10% obstacles, 4 altars at 9 cells on average (out of sight)",
            ScatterGeneratorConfig(width=25, height=25, altars=4, mean_distance=9.0, obstacles=0.1), 300),
    ]
    return SuiteConfig(name="procgen", description="navigation on rooms generated from each episode's seed",
                       simulations=sims)


BUILTIN_SUITES: dict[str, Callable[[], SuiteConfig]] = {
    "arena": arena_suite,
    "navigation": navigation_suite,
    "procgen": procgen_suite,
}
