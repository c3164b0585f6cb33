"""`heartgrid bench env RECIPE`: agent-steps per second of the batched engine.

    heartgrid bench env arena_basic_easy_shaped --envs 64 --device cpu --rounds 5 --seconds 3

Steps the recipe's game with uniformly random valid actions (episode resets included: the
first episodes are desynchronised, so resets happen throughout), after a warm-up, in several
timed rounds, and prints the median. Actions come from a pool of pre-drawn tensors on the
device, so the figure is the engine's own cost, not that of a random number generator. With
`--json` the last line is one JSON object (agent_steps_per_s, envs, agents_per_env, device,
rounds, per-round figures, torch threads, and the process CPU time per round, which shows how
much a shared machine slowed the wall-clock figure).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import torch

from heartgrid.devices import require_device
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.native import NATIVE_STEP
from heartgrid.errors import UsageError, check_seed
from heartgrid.recipes import get_recipe
from heartgrid.threads import choose_threads

ACTION_POOL = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe whose game to step, e.g. arena_basic_easy_shaped")
    parser.add_argument("overrides", nargs="*", default=[], help=argparse.SUPPRESS)  # refused in run()
    parser.add_argument("--envs", type=int, default=None,
                        help="number of envs (default: 64 on cpu, 4096 on cuda)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one timed round (default: 3)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds, the median reported (default: 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds stepped before timing (default: 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of the engine's step (default: the engine's own, 1)")
    parser.add_argument("--gather-threads", type=int, default=None,
                        help="CPU threads of the observation gather (default: one per core less "
                             "the cores other processes keep busy, as training chooses)")
    parser.add_argument("--compile", action="store_true",
                        help="run the engine's step through torch.compile (system.compile; the "
                             "compile time is printed and not timed)")
    parser.add_argument("--native", choices=tuple(NATIVE_STEP), default="auto",
                        help="the engine's step in C++ (system.native_step; default auto: on a CPU "
                             "where it builds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of results")


def run(args: argparse.Namespace) -> int:
    if args.overrides:
        raise UsageError(f"bench env takes no key=value overrides (got {' '.join(args.overrides)}): it "
                         f"steps the recipe's game; --envs, --device, --threads, --gather-threads "
                         f"--compile and --native set the rest")
    if args.rounds < 1 or not 0 < args.seconds < math.inf or not 0 <= args.warmup < math.inf:
        raise UsageError("--rounds must be >= 1, --seconds a number > 0 and --warmup one >= 0 (seconds)")
    if args.envs is not None and args.envs < 1:
        raise UsageError(f"--envs must be >= 1, got {args.envs}")
    check_seed(args.seed)
    if args.native == "on" and args.compile:
        raise UsageError("--native on and --compile choose two engine steps: give one")
    args.device = require_device(args.device, "--device")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {args.device} but CUDA is not available; use --device cpu")
    for option, value in (("--threads", args.threads), ("--gather-threads", args.gather_threads)):
        if value is not None and value < 1:
            raise UsageError(f"{option} must be >= 1")
    gather_note = None
    if args.device.startswith("cpu"):
        if args.gather_threads is None:
            # The process's thread count, which a tensor step's gather uses, as a trainer would
            # choose it.
            choice = choose_threads()
            torch.set_num_threads(choice.threads)
            gather_note = f"observation gather on {choice.threads} thread(s): {choice.reason}"
        else:
            gather_note = f"observation gather on {args.gather_threads} thread(s): --gather-threads"
    game = get_recipe(args.recipe).fn(args.device).game  # an unknown recipe exits 2 in the CLI
    envs = args.envs or (4096 if args.device.startswith("cuda") else 64)
    engine = BatchedEngine(game, num_envs=envs, device=args.device, seed=args.seed,
                           gather_threads=args.gather_threads, compile=args.compile,
                           native=NATIVE_STEP[args.native],
                           **({} if args.threads is None else {"threads": args.threads}))
    native = engine.native is not None  # one thread, the observations included
    if gather_note and not native:
        print(gather_note)
    threads = 1 if native else engine.threads or torch.get_num_threads()
    gather_threads = 1 if native else engine.gather_threads or torch.get_num_threads()
    engine.reset()
    gen = torch.Generator().manual_seed(args.seed)
    pool = [torch.randint(0, len(engine.action_names), (engine.num_slots,), generator=gen)
            .to(engine.device) for _ in range(ACTION_POOL)]

    def sync() -> None:
        if engine.device.type == "cuda":
            torch.cuda.synchronize(engine.device)

    def steps_for(seconds: float) -> tuple[int, float, float]:
        """Step for about `seconds`; (steps, wall seconds, process CPU seconds)."""
        sync()
        wall, cpu, steps = time.perf_counter(), time.process_time(), 0
        while time.perf_counter() - wall < seconds:
            for actions in pool[:8]:
                engine.step(actions)
            pool.append(pool.pop(0))
            steps += 8
            if engine.device.type == "cuda" and steps % 256 == 0:
                sync()  # bound the queue so that the clock measures finished work
        sync()
        return steps, time.perf_counter() - wall, time.process_time() - cpu

    steps_for(args.warmup)  # compiles first, with --compile
    if engine.compiled is not None:
        print(engine.compiled.note)
    engine.drain_episodes()
    rounds = []
    for r in range(args.rounds):
        steps, wall, cpu = steps_for(args.seconds)
        episodes = len(engine.drain_episodes())
        rate = steps * engine.num_slots / wall
        rounds.append({"agent_steps_per_s": rate, "steps": steps, "wall_s": wall, "cpu_s": cpu,
                       "episodes_finished": episodes})
        print(f"round {r + 1}/{args.rounds}: {rate:,.0f} agent-steps/s "
              f"({steps} steps in {wall:.2f} s, process CPU {cpu:.2f} s, {episodes} episodes)")
    median = statistics.median(x["agent_steps_per_s"] for x in rounds)
    threads_used = ("one thread" if native else
                    f"{threads} engine thread(s), {gather_threads} gather thread(s)")
    print(f"{args.recipe}: {envs} envs x {engine.num_agents} agents on {args.device}, "
          f"{engine.step_kind} step, {threads_used}: "
          f"median {median:,.0f} agent-steps/s")
    if args.json:
        print(json.dumps({
            "recipe": args.recipe,
            "agent_steps_per_s": median,
            "envs": envs,
            "agents_per_env": engine.num_agents,
            "device": str(engine.device),
            "device_name": (torch.cuda.get_device_name(engine.device)
                            if engine.device.type == "cuda" else "cpu"),
            "torch_threads": threads,
            "gather_threads": gather_threads,
            "compile": args.compile,
            "step": engine.step_kind,
            "compile_s": engine.compiled.compile_seconds if engine.compiled is not None else None,
            "rounds": len(rounds),
            "round_agent_steps_per_s": [x["agent_steps_per_s"] for x in rounds],
            "round_wall_s": [x["wall_s"] for x in rounds],
            "round_cpu_s": [x["cpu_s"] for x in rounds],
            "round_steps": [x["steps"] for x in rounds],
            "torch_version": torch.__version__,
        }))
    return 0


if __name__ == "__main__":
    # `python -m heartgrid.tools.bench_env ...` is `heartgrid bench env ...` (same exit codes).
    from heartgrid.tools.cli import main

    sys.exit(main(["bench", "env", *sys.argv[1:]]))
