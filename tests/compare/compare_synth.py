"""Synthetic run directories for the compare tests: a real resolved config + made-up curves;
the compare verbs of the CLI, called in-process; the allowance for false-positive rates."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from heartgrid.recipes import build_config
from heartgrid.tools import compare_cmd

RECIPE = "small_easy_shaped"
ALPHA = 0.05


def max_false_rate(draws: int, alpha: float = ALPHA) -> float:
    """Upper limit for an observed false-positive rate whose true rate is alpha (3 sigma)."""
    return alpha + 3.0 * math.sqrt(alpha * (1 - alpha) / draws)


def write_run(
    root: Path,
    name: str,
    *,
    seed: int,
    plateau: float,
    overrides: tuple[str, ...] = (),
    epochs: int = 20,
    steps_per_epoch: int = 2048,
    noise: float = 0.02,
    drop: tuple[str, ...] = (),
    threads: int | None = None,
) -> Path:
    """A run whose reward rises to `plateau` (heart.get to twice that) with seeded noise;
    `threads`: the timing/torch_threads it logs (None: none, as runs before that metric)."""
    config = build_config(
        RECIPE, [*overrides, f"run={name}", f"data_dir={root}", f"system.seed={seed}"], default_device="cpu"
    )
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(config.to_json())
    rng = np.random.default_rng(seed + 1000)
    steps = steps_per_epoch * np.arange(1, epochs + 1)
    progress = 1.0 - np.exp(-4.0 * steps / steps[-1])
    with open(run_dir / "metrics.jsonl", "w") as f:
        for epoch, (step, p) in enumerate(zip(steps, progress)):
            reward = plateau * p + noise * rng.standard_normal()
            record = {
                "metric/agent_step": int(step),
                "metric/epoch": epoch,
                "overview/reward": float(reward),
                "overview/sps": float(1000 + 10 * rng.standard_normal()),
                "env_agent/heart.get": float(2 * reward),
                "env_agent/action.move.failed": float(5 - reward),
                "losses/policy_loss": float(0.01 * rng.standard_normal()),
            }
            if threads is not None:
                record["timing/torch_threads"] = threads
            for key in drop:
                record.pop(key, None)
            f.write(json.dumps(record) + "\n")
    return run_dir


def write_side(
    root: Path, prefix: str, plateaus: list[float], *, first_seed: int = 0, **kwargs
) -> list[Path]:
    return [
        write_run(root, f"{prefix}{i}", seed=first_seed + i, plateau=p, **kwargs) for i, p in enumerate(plateaus)
    ]


def heartgrid(*argv: object) -> int:
    """`heartgrid <compare verb> ...` in this process; errors propagate as exceptions."""
    parser = argparse.ArgumentParser(prog="heartgrid")
    compare_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)
