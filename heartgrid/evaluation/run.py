"""Evaluate a policy URI: choose the game, build the engine, load the policy onto it, play.

The game comes from a recipe when one is named, else from the `config.json` of the run the
checkpoint belongs to (so `heartgrid eval runs/x` plays the game run x trained on); overrides
apply on top in both cases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from heartgrid.checkpoint.manifest import MANIFEST, POLICY_SPEC
from heartgrid.checkpoint.policy_io import load_policy
from heartgrid.checkpoint.uri import run_dir_of
from heartgrid.config.overrides import apply_overrides
from heartgrid.config.resolve import build_config, resolve_device
from heartgrid.config.run import RunConfig
from heartgrid.engine.batched import BatchedEngine
from heartgrid.evaluation.evaluate import EvalResult, evaluate, evaluation_game

RUN_CONFIG = "config.json"


class NoGameError(ValueError):
    """Neither a recipe was named nor does the checkpoint belong to a run with a config."""


@dataclass(frozen=True)
class PolicySource:
    checkpoint: Path
    name: str  # architecture
    epoch: int | None  # None for a policy saved outside a run
    agent_step: int | None


def describe_checkpoint(checkpoint: Path) -> PolicySource:
    spec = json.loads((checkpoint / POLICY_SPEC).read_text())["spec"]
    epoch = agent_step = None
    if (checkpoint / MANIFEST).exists():
        manifest = json.loads((checkpoint / MANIFEST).read_text())
        epoch, agent_step = manifest["epoch"], manifest["agent_step"]
    return PolicySource(checkpoint, spec["name"], epoch, agent_step)


def eval_config(
    checkpoint: Path, recipe: str | None, overrides: list[str], device: str
) -> tuple[RunConfig, str]:
    """(config, where it came from) for evaluating `checkpoint`."""
    if recipe is not None:
        return build_config(recipe, overrides, default_device=device), f"recipe {recipe}"
    run_dir = run_dir_of(checkpoint)
    if run_dir is None or not (run_dir / RUN_CONFIG).is_file():
        raise NoGameError(
            f"{checkpoint} is not inside a run directory with a {RUN_CONFIG}; "
            "name the recipe to evaluate on: heartgrid eval URI RECIPE [key=value ...]"
        )
    config = RunConfig.load(run_dir / RUN_CONFIG)
    return apply_overrides(config, overrides), str(run_dir / RUN_CONFIG)  # type: ignore[return-value]


def evaluate_checkpoint(
    checkpoint: Path,
    config: RunConfig,
    *,
    episodes: int,
    num_envs: int,
    device: str = "auto",
    seed: int = 0,
    greedy: bool = False,
) -> tuple[EvalResult, PolicySource]:
    """Play `episodes` episodes of the policy in `checkpoint` (see `resolve_policy_uri`) on
    `config.game`, with `min(num_envs, episodes)` envs."""
    device = resolve_device(device)
    game = evaluation_game(config.game)
    engine = BatchedEngine(game, min(num_envs, episodes), device=device, seed=seed)
    policy = load_policy(checkpoint, device, engine.features, engine.action_space.names)
    result = evaluate(
        policy, engine, episodes=episodes, max_steps=game.max_steps, greedy=greedy, seed=seed
    )
    return result, describe_checkpoint(checkpoint)

