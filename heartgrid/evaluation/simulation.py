"""Simulations and suites as typed configs (unknown keys refused, like every HeartGrid config).

A simulation is one fixed task a policy is scored on:

    SimulationConfig(category="navigation", name="corridors", recipe="navigation_maze",
                     map="navigation/corridors", episodes=16, seed=0)

- the game: a recipe's game (`recipe`) with dotted `overrides` of that recipe's config
  (`game.max_steps=300`), whose room is optionally replaced by an ASCII map file (`map`, which
  also sets the number of agents and, by its header, the time limit) or by a room generated
  for each episode from its seed (`generator`: maze, radial or scatter; engine/procgen.py);
- `episodes`, `seed` and `max_steps` (the time limit; default: the map file's, else the game's);
- the score: `metric` per agent per episode ("reward", or an agent stat such as "heart.get"),
  divided by `reference` ("auto": the most the map allows, where that is finite; a number; or
  null for the raw metric). See scoring.py for why.

A suite is a named list of simulations; `category/name` identifies a simulation in it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from heartgrid.config.base import Config

NAME_PATTERN = r"^[A-Za-z0-9_.+-]+$"


class _RectangularRoomConfig(Config):
    """What the rectangular generators share (each checks its own size rules: procgen.py)."""

    width: int = Field(ge=3)
    height: int = Field(ge=3)
    agents: int = Field(1, ge=1)
    altars: int = Field(4, ge=0)


class MazeGeneratorConfig(_RectangularRoomConfig):
    """A maze carved from the episode's seed (procgen.maze_room; odd width and height >= 5)."""

    kind: Literal["maze"] = "maze"
    loops: float = Field(0.0, ge=0.0, le=1.0)


class RadialGeneratorConfig(Config):
    """Corridors from a central hub at random angles (procgen.radial_room)."""

    kind: Literal["radial"] = "radial"
    size: int = Field(ge=7)
    arms: int = Field(ge=1)
    agents: int = Field(1, ge=1)
    altars: int | None = Field(None, ge=0)
    hub: int = Field(1, ge=0)


class ScatterGeneratorConfig(_RectangularRoomConfig):
    """An open room with altars scattered at a mean distance from the start (procgen.scatter_room)."""

    kind: Literal["scatter"] = "scatter"
    mean_distance: float = Field(8.0, gt=0)
    obstacles: float = Field(0.0, ge=0.0, lt=0.6)


GeneratorConfig = Annotated[
    MazeGeneratorConfig | RadialGeneratorConfig | ScatterGeneratorConfig, Field(discriminator="kind")
]


class SimulationConfig(Config):
    category: str = Field(pattern=NAME_PATTERN)
    """Group of the simulation in a scorecard (`arena`, `navigation`)."""
    name: str = Field(pattern=NAME_PATTERN)
    """Unique within its category; the simulation is named `category/name`."""
    description: str = ""
    recipe: str
    """The recipe whose game is played (the base game when `map` or `generator` is given)."""
    overrides: list[str] = Field(default_factory=list)
    """Dotted overrides of the recipe's config, e.g. `game.agent.rewards.heart=2`."""
    map: str | None = None
    """An ASCII map file that replaces the game's room: a shipped map (`navigation/corridors`)
    or a path (relative to the suite file)."""
    generator: GeneratorConfig | None = None
    """A room generated for each episode from that episode's seed, instead of the game's room."""
    episodes: int = Field(16, ge=1)
    seed: int = Field(0, ge=0, lt=2**32)
    """Episode i plays the env seeded `rng.env_seed(seed, i)`: every policy meets the same maps."""
    max_steps: int | None = Field(None, ge=1)
    """Episode length; default: the map file's `max_steps`, else the game's."""
    metric: str = "reward"
    """Per agent per episode: "reward", or the name of an agent stat (e.g. "heart.get")."""
    reference: float | Literal["auto"] | None = "auto"
    """score = metric / reference. "auto": the most the map allows per agent where that is
    finite (hearts that cannot be made again), else the raw metric; null: the raw metric."""

    @field_validator("reference")
    @classmethod
    def _positive(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, float) and value <= 0:
            raise ValueError(f"reference must be positive (score = metric / reference), got {value}")
        return value

    @model_validator(mode="after")
    def _one_room(self) -> SimulationConfig:
        if self.map is not None and self.generator is not None:
            raise ValueError(f"simulation {self.key}: give either `map` or `generator`, not both")
        return self

    @property
    def key(self) -> str:
        return f"{self.category}/{self.name}"


class SuiteConfig(Config):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    simulations: list[SimulationConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> SuiteConfig:
        keys = [sim.key for sim in self.simulations]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"suite {self.name}: simulation(s) named twice: {', '.join(twice)}")
        return self

    @property
    def categories(self) -> list[str]:
        """Categories in the order their first simulation appears."""
        return list(dict.fromkeys(sim.category for sim in self.simulations))
