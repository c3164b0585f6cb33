"""`heartgrid bench train RECIPE [key=value ...] [--device D] [--seconds S] [--json]`.

End-to-end training throughput: whole epochs (rollout + update) of the recipe's config, after
one warm-up epoch, for at least `--seconds`. Prints agent steps per second and the share of the
time spent stepping the engine, in the policy's rollout forward passes, in the PPO update, and
in the rest (buffer writes, episode statistics). With `--json` the last line is a JSON object
with `agent_steps_per_s` and the shares.
"""

from __future__ import annotations

import argparse
import json
import time

from heartgrid.errors import UsageError
from heartgrid.recipes import build_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*", default=[], metavar="key=value")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="measure whole epochs for at least this long (default 20)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")


def measure(config, seconds: float) -> dict:
    from heartgrid.trainer.trainer import Trainer

    trainer = Trainer(config)
    trainer.train_epoch()  # warm-up: allocation, first-call overheads
    trainer.timer.restart_window()
    start_step, epochs, start = trainer.agent_step, 0, time.perf_counter()
    while epochs == 0 or time.perf_counter() - start < seconds:
        trainer.train_epoch()
        epochs += 1
    wall = trainer.timer.close_window()
    timing = trainer.timer.window_metrics(epochs)
    share = {phase: timing[f"timing/frac/{phase}"] for phase in ("env", "forward", "update")}
    share["rest"] = timing["timing/frac/stats"] + timing["timing/frac/other"]
    return {
        "recipe": config.recipe,
        "device": str(trainer.device),
        "agent_steps_per_s": (trainer.agent_step - start_step) / wall,
        "env_share": share["env"],
        "forward_share": share["forward"],
        "update_share": share["update"],
        "rest_share": share["rest"],
        "epochs": epochs,
        "seconds": wall,
        "batch_size": config.trainer.batch_size,
        "num_envs": config.trainer.num_envs,
        "policy": config.policy.name,
    }


def run(args: argparse.Namespace) -> int:
    if args.seconds <= 0:
        raise UsageError(f"--seconds must be positive, got {args.seconds}")
    overrides = [f"system.device={args.device}", *args.overrides]
    config = build_config(args.recipe, overrides)
    # The benchmark measures training only: no logging window closes inside it, no files.
    config.logging.log_interval = 2**62
    config.logging.tensorboard = False
    result = measure(config, args.seconds)
    print(f"bench train {result['recipe']} on {result['device']}: "
          f"{result['agent_steps_per_s']:,.0f} agent steps/s over {result['epochs']} epochs "
          f"({result['seconds']:.1f} s, batch {result['batch_size']:,}, {result['num_envs']} envs)")
    for phase in ("env", "forward", "update", "rest"):
        print(f"  {phase:<8}{100 * result[f'{phase}_share']:5.1f}%")
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0
