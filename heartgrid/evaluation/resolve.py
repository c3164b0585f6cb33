"""A simulation config made concrete: the games its episodes play, its seeds, its identity.

    resolved = resolve_simulation(sim, suite="navigation")
    resolved.games(16)          # the game of each of 16 episodes (one per env)
    resolved.episode_seed(3)    # the env seed episode 3 plays: rng.env_seed(sim.seed, 3)
    resolved.config_hash        # sha256 of what decides the episodes (not their number)

Seeds: episode i of a simulation is env i of one BatchedEngine seeded `sim.seed`, so it plays
`env_seed(sim.seed, i)` whatever the number of episodes; its map (random rooms: hashed from
that seed; generated rooms: drawn from it) and its tie-breaking priorities are those of that
seed. Every policy therefore meets exactly the same maps, episode by episode, which is what a
paired comparison of two policies needs. Games are always built with the CPU recipe: a game does
not depend on the device, and the hash must not either.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heartgrid.config.game import AsciiRoomConfig, GameConfig
from heartgrid.config.overrides import OverrideError
from heartgrid.engine import procgen
from heartgrid.engine.action_space import ActionSpace
from heartgrid.engine.maps import MapError
from heartgrid.engine.rng import env_seed
from heartgrid.engine.stats import AgentStatLayout
from heartgrid.errors import UsageError
from heartgrid.evaluation.map_files import MapFile, MapFileError, load_map
from heartgrid.evaluation.npc import npc_uri_problem
from heartgrid.evaluation.references import max_metric_per_agent
from heartgrid.evaluation.simulation import (
    MazeGeneratorConfig,
    RadialGeneratorConfig,
    SimulationConfig,
)
from heartgrid.recipes import UnknownRecipeError, build_config


class SuiteError(UsageError):
    """A suite or simulation that cannot be used (unknown name, invalid spec, unplayable game).
    A UsageError: the CLI prints it as one line with exit status 2."""


@dataclass
class ResolvedSimulation:
    suite: str
    config: SimulationConfig
    game: GameConfig  # the game as evaluated (first episode's room for generated maps)
    map_file: MapFile | None = None
    _games: dict[int, GameConfig] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        return self.config.key

    @property
    def max_steps(self) -> int:
        return self.game.max_steps

    def episode_seed(self, episode: int) -> int:
        return env_seed(self.config.seed, episode)

    def games(self, episodes: int) -> list[GameConfig]:
        """The game of each episode: the same object for fixed rooms (one compiled task);
        for generated rooms, one game per episode with the room drawn from its seed."""
        if self.config.generator is None:
            return [self.game] * episodes
        return [self._generated(i) for i in range(episodes)]

    def _generated(self, episode: int) -> GameConfig:
        if episode not in self._games:
            rows = generate_rows(self.config, self.episode_seed(episode))
            self._games[episode] = with_room(self.game, rows, self.max_steps)
        return self._games[episode]

    def reference(self, game: GameConfig) -> float | None:
        """What a score divides the metric by for an episode of `game` (None: not divided)."""
        ref = self.config.reference
        if ref == "auto":
            return max_metric_per_agent(game, self.config.metric)
        return ref  # type: ignore[return-value]

    @property
    def normalisation(self) -> str:
        """One line: how this simulation's score is made from its metric."""
        metric, ref = self.config.metric, self.config.reference
        if ref == "auto":
            if self.reference(self.game) is not None:
                return (f"{metric} per agent / the most the map allows per agent (its hearts x "
                        "the heart's reward / agents): the share of the map's hearts collected, 0 to 1")
            return f"{metric} per agent (no finite maximum on this map: not normalised)"
        if ref is None:
            return f"{metric} per agent (not normalised)"
        return f"{metric} per agent / {ref:g} (the simulation's reference value)"

    @property
    def config_json(self) -> dict[str, Any]:
        """What decides the episodes: the simulation (less its episode count and description)
        and the resolved game, map rows included."""
        sim = self.config.model_dump(mode="json", exclude={"episodes", "description"})
        return {"simulation": sim, "game": self.game.model_dump(mode="json")}

    @property
    def config_hash(self) -> str:
        text = json.dumps(self.config_json, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def with_room(game: GameConfig, rows: list[str] | tuple[str, ...], max_steps: int) -> GameConfig:
    """`game` with its room replaced by ASCII `rows`, one instance, as many agents as the rows
    hold, episodes of `max_steps` and no desynchronised first episode (evaluation_game)."""
    data = game.model_dump()
    room = AsciiRoomConfig(rows=list(rows))
    data["map"]["room"] = room.model_dump()
    data["map"]["instances"] = 1
    data["num_agents"] = room.agents
    data["max_steps"] = max_steps
    data["desync_episodes"] = False
    return GameConfig.model_validate(data)


def generate_rows(sim: SimulationConfig, seed: int) -> list[str]:
    gen = sim.generator
    if isinstance(gen, MazeGeneratorConfig):
        return procgen.maze_room(gen.width, gen.height, seed, agents=gen.agents, altars=gen.altars,
                                 loops=gen.loops)
    if isinstance(gen, RadialGeneratorConfig):
        return procgen.radial_room(gen.size, gen.arms, seed, agents=gen.agents, altars=gen.altars,
                                   hub=gen.hub)
    assert gen is not None
    return procgen.scatter_room(gen.width, gen.height, seed, agents=gen.agents, altars=gen.altars,
                                mean_distance=gen.mean_distance, obstacles=gen.obstacles)


def resolve_simulation(sim: SimulationConfig, suite: str, base_dir: Path | None = None) -> ResolvedSimulation:
    """Build the simulation's game; SuiteError naming the simulation when it cannot be played."""
    try:
        config = build_config(sim.recipe, list(sim.overrides), default_device="cpu")
        game = config.game
        map_file = None
        if sim.map is not None:
            map_file = load_map(sim.map, base_dir)
            game = with_room(game, map_file.rows, sim.max_steps or map_file.max_steps)
        elif sim.generator is not None:
            rows = generate_rows(sim, env_seed(sim.seed, 0))
            game = with_room(game, rows, sim.max_steps or game.max_steps)
        else:
            data = game.model_dump()
            data["desync_episodes"] = False
            data["max_steps"] = sim.max_steps or game.max_steps
            game = GameConfig.model_validate(data)
        if game.npc_policy_uri is not None:  # refused here, not when the simulation plays
            problem = npc_uri_problem(game.npc_policy_uri)
            if problem:
                raise ValueError(f"game.npc_policy_uri={game.npc_policy_uri}: {problem}")
        resolved = ResolvedSimulation(suite, sim, game, map_file)
        resolved.reference(game)  # a map the engine cannot build fails here, not mid-evaluation
    except (UnknownRecipeError, OverrideError, MapFileError, MapError, procgen.ProcgenError,
            ValueError) as e:
        raise SuiteError(f"simulation {sim.key} of suite {suite}: {e}") from None
    check_metric(resolved)
    return resolved


def check_metric(resolved: ResolvedSimulation) -> None:
    metric = resolved.config.metric
    names = AgentStatLayout(ActionSpace.from_game(resolved.game).type_names).names
    if metric == "reward" or metric in names:
        return
    close = difflib.get_close_matches(metric, ["reward", *names], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise SuiteError(f"simulation {resolved.key}: unknown metric {metric!r}{hint} "
                     "(\"reward\" or a per-agent stat such as \"heart.get\")")
