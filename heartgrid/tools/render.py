"""`heartgrid render RECIPE`: watch a recipe's game as text frames, agents taking random actions.

Runs one env of the reference engine (it keeps the whole grid in readable form) with uniformly
random actions and prints a frame per step:

    step 3/1000  episode 0  rewards this step 0.10  episode reward (mean per agent) 0.10
    ###########
    #..^..m...#        agents: ^ v < > (facing up, down, left, right), * frozen
    #.n....<..#        objects: their ASCII map symbol (legend below the map)
    ...
    objects: # wall  m mine_red  n generator_red  _ altar  s block
    agents: 0^(1,3) ore_red=1 | 1<(2,7) - | ...      (index, facing, (row,col), inventory)

One character per cell and no spaces, so the 62x62 arena stays 62 columns wide.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time

import numpy as np

from heartgrid.config.game import ASCII_SYMBOLS, GameConfig
from heartgrid.engine.maps import MapError
from heartgrid.engine.reference import ReferenceEnv
from heartgrid.engine.reference_rules import Agent, Converter, Wall
from heartgrid.engine.rng import env_seed
from heartgrid.errors import UsageError
from heartgrid.recipes import build_config

ORIENTATION_ARROWS = "^v<>"  # orientation codes 0 up, 1 down, 2 left, 3 right
FROZEN = "*"
EMPTY = "."
# Objects that ASCII maps cannot place still need a character of their own.
EXTRA_SYMBOLS = {
    "mine_blue": "b",
    "mine_green": "g",
    "generator_blue": "N",
    "generator_green": "G",
}
UNKNOWN = "?"
LINE_WIDTH = 100


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="print a recipe's map as text frames while agents take random actions",
        description="Agents are arrows showing where they face (* when frozen); objects are "
        "their ASCII map symbols; a legend lists the symbols and each agent's inventory.",
    )
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="config overrides")
    p.add_argument("--steps", type=int, default=20, help="steps to play (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the map and the actions (default 0)")
    p.add_argument("--delay", type=float, default=0.0,
                   help="seconds between frames (default 0); on a terminal frames then redraw in place")
    p.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    if args.steps < 0 or args.delay < 0 or args.seed < 0:
        raise UsageError("--steps, --seed and --delay must be >= 0")
    # Unknown recipes, keys and bad values are mapped to exit 2 by the CLI itself.
    game = build_config(args.recipe, args.overrides, default_device="cpu").game
    try:
        env = ReferenceEnv(game, env_seed(args.seed, 0))
        env.reset()
    except MapError as e:
        raise UsageError(str(e)) from None

    redraw = args.delay > 0 and sys.stdout.isatty()
    actions_rng = np.random.default_rng(args.seed)
    rewards = np.zeros(env.num_agents, dtype=np.float32)
    for step in range(args.steps + 1):
        if redraw:
            print("\x1b[H\x1b[2J", end="")
        print(render_frame(env, game, step, rewards), flush=True)
        if step == args.steps:
            break
        if args.delay:
            time.sleep(args.delay)
        actions = actions_rng.integers(0, len(env.action_space), size=env.num_agents)
        _, rewards, _, _, info = env.step(actions)
        if info["episode"] is not None:
            print(f"episode {env.episode - 1} ended after {info['episode'].length} steps, "
                  f"reward (mean per agent) {info['episode'].reward:.2f}\n")
    return 0


def object_symbols(game: GameConfig) -> dict[str, str]:
    """Character of each object name: its ASCII map symbol, else a fixed extra one."""
    symbols = {name: symbol for symbol, name in ASCII_SYMBOLS.items()}
    return {name: symbols.get(name, EXTRA_SYMBOLS.get(name, UNKNOWN)) for name in [*game.objects, "wall"]}


def render_frame(env: ReferenceEnv, game: GameConfig, step: int, rewards: np.ndarray) -> str:
    symbols = object_symbols(game)
    on_map: dict[str, str] = {}
    rows = []
    for row in env.world.grid:
        chars = []
        for obj in row:
            if obj is None:
                chars.append(EMPTY)
            elif isinstance(obj, Agent):
                chars.append(FROZEN if obj.frozen > 0 else ORIENTATION_ARROWS[obj.orientation])
            else:
                assert isinstance(obj, (Converter, Wall))
                on_map[obj.name] = symbols[obj.name]
                chars.append(symbols[obj.name])
        rows.append("".join(chars))
    mean_reward = sum(a.episode_reward for a in env.agents) / len(env.agents)
    header = (f"step {env.t}/{env.length}  episode {env.episode}  (frame {step})  "
              f"rewards this step {float(rewards.sum()):.2f}  "
              f"episode reward (mean per agent) {mean_reward:.2f}")
    legend = "objects: " + "  ".join(f"{s} {name}" for name, s in sorted(on_map.items()))
    agents = " | ".join(agent_label(env, a) for a in env.agents)
    wrapped = textwrap.fill("agents: " + agents, width=LINE_WIDTH, subsequent_indent="  ")
    return "\n".join([header, *rows, legend, wrapped, ""])


def agent_label(env: ReferenceEnv, agent: Agent) -> str:
    facing = FROZEN if agent.frozen > 0 else ORIENTATION_ARROWS[agent.orientation]
    items = " ".join(f"{item}={n}" for item, n in env.inventory(agent.index).items()) or "-"
    return f"{agent.index}{facing}({agent.row},{agent.col}) {items}"
