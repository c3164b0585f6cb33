"""`heartgrid render RECIPE`: watch a recipe's game as text frames, agents taking random actions.
`heartgrid render RECIPE --policy URI [--replay FILE]`: the same, a policy playing.

Without --policy, runs one env of the reference engine (it keeps the whole grid in readable
form) with uniformly random actions and prints a frame per step:

    step 3/1000  episode 0  rewards this step 0.10  episode reward (mean per agent) 0.10
    ###########
    #..^..m...#        agents: ^ v < > (facing up, down, left, right), * frozen
    #.n....<..#        objects: their ASCII map symbol (legend below the map)
    ...
    objects: # wall  m mine_red  n generator_red  _ altar  s block
    agents: 0^(1,3) ore_red=1 | 1<(2,7) - | ...      (index, facing, (row,col), inventory)

One character per cell and no spaces, so the 62x62 arena stays 62 columns wide.

With --policy (a policy URI, or `random` / `noop`), env 0 of the batched engine plays one
episode (its full length; --steps N stops after N steps) with the policy's sampled actions
(--greedy: the most likely), on --device; it is recorded as a replay (heartgrid.replay), the
frames are drawn from the replay's states, and --replay FILE writes it (docs/replays.md).
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heartgrid.checkpoint.errors import CheckpointError
from heartgrid.config.game import ASCII_SYMBOLS, GameConfig
from heartgrid.config.items import ITEMS
from heartgrid.devices import require_device
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.maps import MapError
from heartgrid.engine.reference import ReferenceEnv
from heartgrid.engine.reference_rules import Agent, Converter, Wall
from heartgrid.engine.rng import env_seed
from heartgrid.errors import EXIT_FILE_FAULT, UsageError, check_output_path, check_seed
from heartgrid.evaluation.evaluate import evaluation_game
from heartgrid.evaluation.npc import NpcPlayers
from heartgrid.evaluation.run import load_evaluated_policy
from heartgrid.recipes import build_config
from heartgrid.replay.episode import SCRIPTED, record_episode, scripted_policy
from heartgrid.replay.format import write_replay
from heartgrid.replay.reader import ReplayState
from heartgrid.rundir.faults import file_fault

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
    p.add_argument("--steps", type=int, default=None,
                   help="steps to play (default 20; with --policy the whole episode)")
    p.add_argument("--seed", type=int, default=0, help="seed of the map and the actions (default 0)")
    p.add_argument("--delay", type=float, default=0.0,
                   help="seconds between frames (default 0); on a terminal frames then redraw in place")
    p.add_argument("--policy", metavar="URI",
                   help="play this policy (checkpoint dir, run dir, policy.safetensors, file://..., "
                        "or random / noop) on the batched engine instead of random actions")
    p.add_argument("--replay", type=Path, metavar="FILE",
                   help="with --policy: write the episode as a replay (.hgreplay; docs/replays.md)")
    p.add_argument("--greedy", action="store_true", help="with --policy: the most likely action, not a sample")
    p.add_argument("--device", default="cpu", help="with --policy: cpu (default), cuda, cuda:N or auto")
    p.add_argument("--quiet", action="store_true", help="print no frames (with --replay: only write it)")
    p.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    if (args.steps or 0) < 0 or not 0 <= args.delay < math.inf:
        raise UsageError("--steps must be >= 0 and --delay a number of seconds >= 0")
    check_seed(args.seed)
    if args.policy is not None:
        if args.replay is not None:  # now, not after the episode has been played
            check_output_path(args.replay, "--replay ")
        return render_policy(args)
    for flag, value in (("--replay", args.replay), ("--greedy", args.greedy), ("--quiet", args.quiet)):
        if value:
            raise UsageError(f"{flag} needs --policy URI (a policy, or {' / '.join(SCRIPTED)})")
    if args.steps is None:
        args.steps = 20
    # Unknown recipes, keys and bad values are mapped to exit 2 by the CLI itself. Whole
    # episodes, as --policy and evaluation play them (no shortened first episode).
    game = evaluation_game(build_config(args.recipe, args.overrides, default_device="cpu").game)
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


# --------------------------------------------------------------------------------------------
# --policy: the batched engine, recorded; frames drawn from the replay


def render_policy(args: argparse.Namespace) -> int:
    game = evaluation_game(build_config(args.recipe, args.overrides, default_device="cpu").game)
    device = require_device(args.device, "--device")
    try:
        engine = BatchedEngine(game, 1, device=device, seed=args.seed)
    except MapError as e:
        raise UsageError(str(e)) from None
    meta: dict[str, Any] = {"source": "render", "recipe": args.recipe, "policy": args.policy}
    if args.policy in SCRIPTED:
        policy = scripted_policy(args.policy, engine.action_names)
    else:
        try:
            policy, source = load_evaluated_policy(args.policy)
            policy.adapt(engine.features, engine.action_space.names)
        except CheckpointError as e:
            raise UsageError(str(e)) from None
        except ValueError as e:  # it cannot play this game (another window size, ...): says why
            raise UsageError(f"{args.policy}: {e}") from None
        meta.update(epoch=source.epoch, agent_step=source.agent_step)
    policy.to(device).eval()
    npcs = None  # game.policy_agents_pct < 1: the NPC agents are played as in evaluation
    if game.npc_policy_uri is not None:
        npcs = NpcPlayers(game, 1, engine.features, engine.action_space.names, engine.device, seed=args.seed)
        meta.update(npcs.replay_meta())
    try:
        document = record_episode(policy, engine, env=0, meta=meta, greedy=args.greedy,
                                  generator=torch.Generator(device).manual_seed(args.seed),
                                  max_steps=args.steps, npcs=npcs,
                                  npc_generator=torch.Generator(device).manual_seed(args.seed + 1))
    except ValueError as e:  # found at its first step: e.g. a conv policy of another window size
        raise UsageError(f"{args.policy}: {e}") from None
    replay = ReplayState(document)
    if not args.quiet:
        show_frames(document, replay, args.delay)
    rewards = replay.at(len(replay))["agents"]["reward"]
    ended = {"cut": "was cut"}.get(document["end"], f"ended ({document['end']})")
    print(f"episode {ended} after {len(replay)} steps, reward (mean per agent) "
          f"{sum(rewards) / len(rewards):.2f}")
    if args.replay is not None:
        try:
            path = write_replay(args.replay, document)
        except OSError as e:  # disk full, read-only: one line naming the file, exit 4
            print(f"heartgrid render: error: {file_fault(e, 'choose another --replay path, or free space')}",
                  file=sys.stderr)
            return EXIT_FILE_FAULT
        print(f"replay: {path} ({path.stat().st_size:,} bytes; heartgrid replay {path})")
    return 0


def show_frames(document: dict[str, Any], replay: ReplayState, delay: float) -> None:
    redraw = delay > 0 and sys.stdout.isatty()
    game = GameConfig.model_validate(document["game"])
    for t in range(len(replay) + 1):
        if redraw:
            print("\x1b[H\x1b[2J", end="")
        print(replay_frame(document, replay, t, game), flush=True)
        if delay and t < len(replay):
            time.sleep(delay)


def replay_frame(document: dict[str, Any], replay: ReplayState, t: int, game: GameConfig) -> str:
    """A frame like `render_frame`'s, drawn from a replay's state at step t."""
    state = replay.at(t)
    agents, A = state["agents"], document["num_agents"]
    types, conv_types = document["object_types"], document["converters"]["type"]
    symbols = object_symbols(game)
    grid = [[EMPTY] * document["width"] for _ in range(document["height"])]
    on_map: dict[str, str] = {}
    for index, (type_id, row, col) in enumerate(state["objects"]):
        if index < A:
            frozen = agents["frozen"][index] > 0
            grid[row][col] = FROZEN if frozen else ORIENTATION_ARROWS[agents["orientation"][index]]
            continue
        name = conv_types[index - A] if index < A + len(conv_types) else types[type_id]
        grid[row][col] = on_map[name] = symbols.get(name, EXTRA_SYMBOLS.get(name, UNKNOWN))
    step_reward = sum(r for _, r in document["steps"][t - 1].get("r", ())) if t else 0.0
    meta = document["meta"]
    header = (f"step {t}/{document['game']['max_steps']}  episode {meta['episode']}  (frame {t})  "
              f"rewards this step {step_reward:.2f}  "
              f"episode reward (mean per agent) {sum(agents['reward']) / A:.2f}")
    legend = "objects: " + "  ".join(f"{s} {name}" for name, s in sorted(on_map.items()))
    labels = []
    for a, (row, col) in enumerate(o[1:] for o in state["objects"][:A]):
        facing = FROZEN if agents["frozen"][a] > 0 else ORIENTATION_ARROWS[agents["orientation"][a]]
        items = " ".join(f"{item}={n}" for item, n in zip(ITEMS, agents["inventory"][a]) if n) or "-"
        labels.append(f"{a}{facing}({row},{col}) {items}")
    wrapped = textwrap.fill("agents: " + " | ".join(labels), width=LINE_WIDTH, subsequent_indent="  ")
    return "\n".join([header, *("".join(r) for r in grid), legend, wrapped, ""])


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
