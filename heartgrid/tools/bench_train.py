"""`heartgrid bench train RECIPE [key=value ...] [--device D] [--seconds S] [--nproc N] [--json]`.

End-to-end training throughput: whole epochs (rollout + update) of the recipe's config, after
one warm-up epoch, for at least `--seconds`. Prints agent steps per second and the share of the
time spent stepping the engine, in the policy's rollout forward passes, in the PPO update, and
in the rest (buffer writes, episode statistics). With `--json` the last line is a JSON object
with `agent_steps_per_s` and the shares.

`--nproc N` measures the same per-rank config on 1 rank, then on N ranks of this machine
through torchrun (docs/distributed.md), and reports the world's agent steps per second of each
and the scaling efficiency, (N-rank throughput) / (N x 1-rank throughput): 1 when N ranks do N
times the work of one in the same time. Under torchrun (WORLD_SIZE set) the command measures
its world, and rank 0 prints.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time

import torch

from heartgrid.errors import UsageError
from heartgrid.recipes import build_config
from heartgrid.tools.torchrun import check_nproc, launch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*", default=[], metavar="key=value")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="measure whole epochs for at least this long (default 20)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--nproc", type=int, default=None, metavar="N",
                        help="also measure N ranks of this machine (torchrun) and report the scaling efficiency")


def measure(config, seconds: float, world=None) -> dict:
    from heartgrid.trainer.trainer import Trainer

    trainer = Trainer(config, world=world)
    trainer.train_epoch()  # warm-up: allocation, first-call overheads
    trainer.timer.restart_window()
    start_step, epochs, start = trainer.agent_step, 0, time.perf_counter()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def more() -> bool:  # the ranks agree, as they must run the same epochs
        done = epochs > 0 and time.perf_counter() - start >= seconds
        return not (world.any(done, "timing the benchmark") if world is not None else done)

    while more():
        trainer.train_epoch()
        epochs += 1
    wall = trainer.timer.close_window()
    # Pages touched for the first time: high when freed tensors go back to the kernel every
    # minibatch (heartgrid/allocator.py), so a regression there shows here.
    usage = resource.getrusage(resource.RUSAGE_SELF)
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
        "page_faults_per_epoch": (usage.ru_minflt - faults) / epochs,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "seconds": wall,
        "batch_size": config.trainer.batch_size,
        "num_envs": config.trainer.num_envs,
        "policy": config.policy.name,
        "ranks": 1 if world is None else world.size,
        "torch_threads": torch.get_num_threads(),
        "torch_threads_note": trainer.threads_note,
        "engine_compile": trainer.engine.compiled.note if trainer.engine.compiled is not None else None,
    }


def run(args: argparse.Namespace) -> int:
    if not 0 < args.seconds < math.inf:  # NaN would never end the measurement
        raise UsageError(f"--seconds must be a positive number, got {args.seconds}")
    overrides = [f"system.device={args.device}", *args.overrides]
    config = build_config(args.recipe, overrides)
    # The benchmark measures training only: no logging window closes inside it (nor does the
    # last epoch of the recipe's budget, which logs), no files.
    config.logging.log_interval = 2**62
    config.trainer.total_timesteps = 2**62
    config.logging.tensorboard = False
    if args.nproc is not None:
        check_nproc(args.nproc)
        return scaling(args, config)
    from heartgrid.trainer.world_start import start_world, stop_world, with_world_size

    world = start_world(with_world_size(config))
    result = measure(config, args.seconds, world)
    stop_world(world)
    if world is not None and not world.is_main:
        return 0
    report(result)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


def report(result: dict) -> None:
    ranks = f", {result['ranks']} ranks" if result["ranks"] > 1 else ""
    print(f"bench train {result['recipe']} on {result['device']}{ranks}: "
          f"{result['agent_steps_per_s']:,.0f} agent steps/s over {result['epochs']} epochs "
          f"({result['seconds']:.1f} s, batch {result['batch_size']:,} and {result['num_envs']} envs per rank, "
          f"{result['torch_threads_note']})", flush=True)
    if result.get("engine_compile"):
        print(f"  {result['engine_compile']} (in the warm-up epoch, not timed)", flush=True)
    for phase in ("env", "forward", "update", "rest"):
        print(f"  {phase:<8}{100 * result[f'{phase}_share']:5.1f}%", flush=True)
    print(f"  memory: peak {result['peak_rss_mb']:,.0f} MB (this process), "
          f"{result['page_faults_per_epoch']:,.0f} page faults per epoch", flush=True)


def scaling(args: argparse.Namespace, config) -> int:
    """1 rank here, then N ranks through torchrun, one after the other (never at once)."""
    single = measure(config, args.seconds)
    report(single)
    if args.nproc == 1:
        world = single
    else:
        argv = ["bench", "train", args.recipe, *args.overrides, "--device", args.device,
                "--seconds", str(args.seconds), "--json"]
        status, output = launch(args.nproc, argv, verb="bench train", capture=True)
        lines = [line for line in output.splitlines() if line.strip()]
        if status != 0 or not lines:
            print(f"heartgrid bench train: error: the {args.nproc}-rank run failed (status {status})", file=sys.stderr)
            return status or 1
        print("\n".join(lines[:-1]), flush=True)
        world = json.loads(lines[-1])
    efficiency = world["agent_steps_per_s"] / (args.nproc * single["agent_steps_per_s"])
    print(f"scaling: 1 rank {single['agent_steps_per_s']:,.0f} agent steps/s; {args.nproc} ranks "
          f"{world['agent_steps_per_s']:,.0f} ({world['agent_steps_per_s'] / args.nproc:,.0f} per rank); "
          f"efficiency {efficiency:.2f} = {args.nproc}-rank / ({args.nproc} x 1-rank)")
    if args.json:
        print(json.dumps({"one_rank": single, "ranks": world, "nproc": args.nproc,
                          "scaling_efficiency": efficiency}, sort_keys=True))
    return 0
