"""Thread settings on a quiet and on a busy machine, side by side (issue #15, "robust defaults").

    python benchmarks/threads.py [--recipe arena_basic_easy_shaped] [--repeats 3]

For each condition — `quiet`, and `busy`: one extra process spinning on a core for the whole
measurement, as a neighbour's job would — it runs, `--repeats` times each, in turn:

    heartgrid bench env RECIPE --envs 64 --device cpu                 (the default on a CPU: the
                                         native step on one thread, which the two settings below,
                                         made for the tensor step, do not change)
    heartgrid bench env RECIPE --envs 64 --device cpu --threads 2
    heartgrid bench env ... with OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=3000 (a short OpenMP
                                         spin: the default until the 10th session)
    heartgrid bench train RECIPE --device cpu                         (the defaults: one torch
                                         thread per core less the cores found busy at the start,
                                         a long OpenMP spin; heartgrid/threads.py, heartgrid/__init__.py)
    heartgrid bench train RECIPE --device cpu system.torch_threads=CORES  (one per core, always)
    heartgrid bench train RECIPE --device cpu system.torch_threads=1
    heartgrid bench train ... system.torch_threads=CORES with the short spin

and prints the median agent-steps/s of each, and each setting against the best one of its
command in the same condition (the default must be within 10% of the best quiet and within
1.3x busy). "Quiet" means no neighbour started by this script: check the load average it
prints, other work on the machine counts too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from contextlib import contextmanager

HEARTGRID = [sys.executable, "-m", "heartgrid.tools.cli"]


@contextmanager
def neighbour(busy: bool):
    """A process keeping one core busy (pure Python spinning: no threads, no memory traffic)."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def figure(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """agent-steps/s and torch threads from the command's final --json line."""
    out = subprocess.run(command + ["--json"], capture_output=True, text=True, check=True,
                         env=env).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return float(result["agent_steps_per_s"]), int(result["torch_threads"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--recipe", default="arena_basic_easy_shaped", help="the recipe both commands use")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each setting per condition (median)")
    parser.add_argument("--env-seconds", type=float, default=2.0, help="bench env: seconds per round (3 rounds)")
    parser.add_argument("--train-seconds", type=float, default=12.0, help="bench train: seconds per run")
    args = parser.parse_args()

    env = [*HEARTGRID, "bench", "env", args.recipe, "--envs", "64", "--device", "cpu",
           "--rounds", "3", "--seconds", str(args.env_seconds)]
    def train(*overrides: str) -> list[str]:
        return [*HEARTGRID, "bench", "train", args.recipe, *overrides, "--device", "cpu",
                "--seconds", str(args.train_seconds)]

    # heartgrid's default: GOMP_SPINCOUNT=3000000 (heartgrid/__init__.py); setting either variable
    # replaces it. OMP_NUM_THREADS would replace the thread choice.
    spin = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")
    base = {key: value for key, value in os.environ.items() if key not in spin}
    short_spin = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "3000"}
    cores = len(os.sched_getaffinity(0))
    settings = {
        ("env", "default"): (env, {}),
        ("env", f"threads={cores}"): (env + ["--threads", str(cores)], {}),
        ("env", "short spin"): (env, short_spin),
        ("train", "default"): (train(), {}),
        ("train", f"torch_threads={cores}"): (train(f"system.torch_threads={cores}"), {}),
        ("train", "torch_threads=1"): (train("system.torch_threads=1"), {}),
        ("train", f"{cores}, short spin"): (train(f"system.torch_threads={cores}"), short_spin),
    }
    results: dict[tuple[str, str, str], list[float]] = {}
    for condition in ("quiet", "busy"):
        with neighbour(condition == "busy"):
            for _ in range(args.repeats):
                for (command, setting), (argv, variables) in settings.items():
                    rate, threads = figure(argv, {**base, **variables})
                    results.setdefault((condition, command, setting), []).append(rate)
                    print(f"{condition:<6}{command:<7}{setting:<17}{rate:>12,.0f}  "
                          f"{threads} thread(s), load {os.getloadavg()[0]:.2f}", flush=True)

    print(f"\n{args.recipe}, {os.cpu_count()} CPUs, median of {args.repeats}:")
    print(f"{'condition':<10}{'command':<8}{'setting':<18}{'agent-steps/s':>14}{'best/this':>11}")
    for condition in ("quiet", "busy"):
        for command in ("env", "train"):
            medians = {s: statistics.median(v) for (c, k, s), v in results.items()
                       if c == condition and k == command}
            best = max(medians.values())
            for setting, rate in medians.items():
                print(f"{condition:<10}{command:<8}{setting:<18}{rate:>14,.0f}{best / rate:>10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
