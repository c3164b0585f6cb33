"""`heartgrid play RECIPE [key=value ...] [--policy URI] [--agent K]`: play a game in a browser.

You steer agent K (default 0) with the keyboard; the others follow a policy (a checkpoint,
run directory or policy file URI; or `random`; default `noop`). The page shows the key map
(arrows or WASD move, e get, r put, space waits, ...). The game steps on each key press, or
with --speed S at S steps a second (your last key is your next action). The server runs on
127.0.0.1 (port 8470 by default; --port 0 picks a free one) until Ctrl-C; the page's Save
button writes the episode as a replay, and so does exit when --save FILE is given.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from heartgrid.checkpoint.errors import CheckpointError
from heartgrid.engine.maps import MapError
from heartgrid.errors import UsageError, check_output_path, check_seed
from heartgrid.evaluation.run import load_evaluated_policy
from heartgrid.recipes import build_config
from heartgrid.replay.episode import SCRIPTED
from heartgrid.replay.format import SUFFIX
from heartgrid.replay.play import PlaySession, policy_actor
from heartgrid.replay.server import DEFAULT_HOST, DEFAULT_PORT, PlayHub, bind_socket, play_app, serve, url_of

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "play",
        help="play a recipe's game in a browser: you steer one agent, a policy the others",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="config overrides")
    p.add_argument("--policy", default="noop", metavar="URI",
                   help="what moves the other agents: a policy URI, `random` or `noop` (default)")
    p.add_argument("--agent", type=int, default=0, metavar="K", help="the agent you steer (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the maps and of sampled actions (default 0)")
    p.add_argument("--speed", type=float, default=0.0, metavar="STEPS_PER_S",
                   help="steps a second; 0 (default): one step per key press")
    p.add_argument("--save", type=Path, metavar="FILE",
                   help=f"write the episode as a replay here on Save and on exit ({SUFFIX})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port to serve on (default {DEFAULT_PORT}; 0: a free one)")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    p.set_defaults(func=cmd_play)


def actor_factory(policy: str, seed: int) -> Any:
    """The others' actor: a scripted policy by name, or the policy a URI names, loaded as
    `heartgrid eval` loads it (PlaySession binds it to the game's features and actions)."""
    if policy in SCRIPTED:
        return policy_actor(policy, seed)
    try:
        module, _ = load_evaluated_policy(policy)
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    return policy_actor(module, seed)


def check_writable(save: Path) -> None:
    """Before the game starts, not when its episode would be lost: --save must name a file that
    can be written (its directory is created, and a file written there and removed)."""
    check_output_path(save, "--save ")
    try:
        save.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=save.parent).close()
    except OSError as e:
        raise UsageError(f"--save {save}: cannot write in {save.parent} ({e.strerror or e}); "
                         "choose another replay file") from None


def cmd_play(args: argparse.Namespace) -> int:
    if not 0 <= args.speed <= 1000:  # NaN too, which would reach the page as invalid JSON
        raise UsageError(f"--speed must be in 0..1000 steps a second (0: a step per key press), got {args.speed}")
    check_seed(args.seed)
    game = build_config(args.recipe, args.overrides, default_device="cpu").game
    if args.save is not None:
        check_writable(args.save)
    factory = actor_factory(args.policy, args.seed)
    meta = {"recipe": args.recipe, "policy": args.policy, "seed": args.seed}
    try:
        session = PlaySession(game, agent=args.agent, seed=args.seed, actor=factory, meta=meta)
    except MapError as e:
        raise UsageError(str(e)) from None
    sock = bind_socket(args.host, args.port)  # a taken port: one line, exit 2
    hub = PlayHub(session, speed=args.speed, save=args.save)
    try:
        print(f"heartgrid play: {args.recipe}, you are agent {args.agent} of {game.num_agents}; "
              f"open {url_of(sock)} (Ctrl-C to stop)", flush=True)
        serve(play_app(hub, host=args.host), sock)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a person stops the game: not an error
    finally:
        sock.close()
        if args.save is not None and hub.session.steps:
            path = hub.save()
            print(f"heartgrid play: saved the episode ({hub.session.steps} steps) to {path}", file=sys.stderr)
    return 0
