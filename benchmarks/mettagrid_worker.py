"""The reference engine's side of benchmarks/vs_mettagrid.py: mettagrid's C++ engine on its arena.

Runs in mettagrid's own virtual environment (its dependencies are not HeartGrid's), so it imports
nothing from HeartGrid and prints one JSON line:

    .venv-mettagrid/bin/python benchmarks/mettagrid_worker.py --rounds 5 --seconds 3

The engine is stepped as `heartgrid bench env` steps HeartGrid's: uniformly random actions from
a pre-drawn table written into the engine's action buffer, `step()` on the C++ simulation and
nothing else (no Python wrapper, no policy), a new episode whenever one ends, after a warm-up;
agent-steps/s of each timed round and their median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from importlib.metadata import version

import numpy as np
from mettagrid.builder.envs import make_arena
from mettagrid.simulator import Simulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config = make_arena(args.agents)
    simulator = Simulator()
    episode = 0
    simulation = simulator.new_simulation(config, seed=args.seed)
    engine = simulation._c_sim  # the C++ engine itself, as its own perf harness times it
    rng = np.random.RandomState(args.seed)
    actions = rng.randint(0, len(simulation.action_names), size=(4096, simulation.num_agents))
    actions = actions.astype(engine.actions().dtype)

    def steps_for(seconds: float) -> tuple[int, float, int]:
        nonlocal simulation, engine, episode
        start, steps, episodes = time.perf_counter(), 0, 0
        while time.perf_counter() - start < seconds:
            for row in actions[steps % 4096: steps % 4096 + 64]:
                engine.actions()[:] = row
                engine.step()
                if simulation.is_done():
                    simulation.close()
                    episode, episodes = episode + 1, episodes + 1
                    simulation = simulator.new_simulation(config, seed=args.seed + episode)
                    engine = simulation._c_sim
            steps += 64
        return steps, time.perf_counter() - start, episodes

    steps_for(args.warmup)
    rounds = []
    for _ in range(args.rounds):
        steps, wall, episodes = steps_for(args.seconds)
        rounds.append(steps * simulation.num_agents / wall)
    print(json.dumps({
        "engine": f"mettagrid {version('mettagrid')}",
        "arena": f"make_arena({args.agents})",
        "agents": simulation.num_agents,
        "map": [simulation.map_height, simulation.map_width],
        "actions": simulation.action_names,
        "max_steps": config.game.max_steps,
        "observation_tokens": list(simulation.observation_shape),
        "agent_steps_per_s": statistics.median(rounds),
        "round_agent_steps_per_s": rounds,
    }))


if __name__ == "__main__":
    main()
