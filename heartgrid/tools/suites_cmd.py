"""`heartgrid suites [SUITE]`: the evaluation suites and their simulations.

Without SUITE: each built-in suite, its simulation count, categories and what it measures.
With SUITE (a built-in name, a .json/.yaml/.py suite file, or module:ATTRIBUTE): each simulation
with its game, episodes, time limit and how its score is normalised. A suite file is checked
completely (every map built), so this is also how to validate one before an evaluation.
"""

from __future__ import annotations

import argparse
import json

from heartgrid.evaluation.builtin_suites import BUILTIN_SUITES
from heartgrid.evaluation.resolve import ResolvedSimulation
from heartgrid.evaluation.scorecard_text import format_table
from heartgrid.evaluation.suites import load_suite


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("suites", help="list the evaluation suites, or the simulations of one",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("suite", nargs="?", help="a suite to show (name, suite file or module:ATTRIBUTE)")
    p.add_argument("--json", action="store_true", help="print as JSON instead")
    p.set_defaults(func=cmd_suites)


def cmd_suites(args: argparse.Namespace) -> int:
    if args.suite is None:
        rows = []
        for name, make in sorted(BUILTIN_SUITES.items()):
            suite = make()
            rows.append([name, len(suite.simulations), ", ".join(suite.categories), suite.description])
        if args.json:
            print(json.dumps([dict(zip(("suite", "simulations", "categories", "description"), r)) for r in rows]))
        else:
            print(format_table(["suite", "simulations", "categories", "description"], rows))
            print("heartgrid suites SUITE shows its simulations; heartgrid eval URI --suite SUITE scores a policy")
        return 0
    loaded = load_suite(args.suite)
    resolved = loaded.resolve()
    if args.json:
        print(json.dumps({"suite": loaded.name, "source": loaded.source,
                          "simulations": [describe(sim) for sim in resolved]}, sort_keys=True))
        return 0
    print(f"suite {loaded.name} ({loaded.source}): {loaded.config.description}")
    rows = [[sim.key, game_of(sim), sim.game.num_agents, sim.config.episodes, sim.max_steps,
             sim.config.seed, _reference(sim), sim.config.description] for sim in resolved]
    print(format_table(["simulation", "game", "agents", "episodes", "max_steps", "seed", "reference",
                        "description"], rows))
    print("scores:")
    for text in dict.fromkeys(sim.normalisation for sim in resolved):
        print(f"  {text}")
    return 0


def _reference(sim: ResolvedSimulation) -> str:
    """What the first episode's metric is divided by ("-": the raw metric)."""
    value = sim.reference(sim.game)
    return "-" if value is None else f"{value:g}"


def game_of(sim: ResolvedSimulation) -> str:
    c = sim.config
    game = c.recipe + (" " + " ".join(c.overrides) if c.overrides else "")
    if c.map is not None:
        return f"map {c.map} on {game}"
    if c.generator is not None:
        return f"{c.generator.kind} room per episode on {game}"
    return game


def describe(sim: ResolvedSimulation) -> dict:
    return {"simulation": sim.key, "game": game_of(sim), "agents": sim.game.num_agents,
            "episodes": sim.config.episodes, "max_steps": sim.max_steps, "seed": sim.config.seed,
            "description": sim.config.description, "score": sim.normalisation,
            "reference": sim.reference(sim.game),
            "config_hash": sim.config_hash}
