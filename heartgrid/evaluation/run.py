"""Evaluate a policy URI: load the policy, choose the game, build the engine, bind, play.

    policy, source = load_evaluated_policy(uri)              # resolves and verifies the URI once
    config, game_source = eval_config(source.checkpoint, recipe, overrides, device)
    result = evaluate_on_game(policy, config.game, episodes=16, num_envs=8, device=device)

The game comes from a recipe when one is named, else from the `config.json` of the run the
checkpoint belongs to (so `heartgrid eval runs/x` plays the game run x trained on: its base
`game`, when the run trained on a curriculum of tasks around it, which the game source then
says); overrides apply on top in both cases.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from heartgrid.checkpoint.manifest import MANIFEST, read_manifest
from heartgrid.checkpoint.policy_io import load_policy_with_source, read_policy_spec
from heartgrid.checkpoint.uri import run_dir_of
from heartgrid.config.curriculum import SingleTaskConfig
from heartgrid.config.game import GameConfig
from heartgrid.config.overrides import apply_overrides
from heartgrid.config.run import RunConfig
from heartgrid.devices import require_device
from heartgrid.engine.batched import BatchedEngine
from heartgrid.evaluation.evaluate import EvalResult, evaluate, evaluation_game
from heartgrid.evaluation.npc import NpcPlayers
from heartgrid.recipes import build_config
from heartgrid.replay.requests import ReplayRequest
from heartgrid.rundir import CONFIG_FILE, read_run_config


class NoGameError(ValueError):
    """Neither a recipe was named nor does the checkpoint belong to a run with a config."""


@dataclass(frozen=True)
class PolicySource:
    checkpoint: Path
    name: str  # architecture
    epoch: int | None  # None for a policy saved outside a run
    agent_step: int | None


def describe_checkpoint(checkpoint: Path) -> PolicySource:
    spec = read_policy_spec(checkpoint)
    if not (checkpoint / MANIFEST).exists():  # written by save_policy, outside a run
        return PolicySource(checkpoint, spec["name"], None, None)
    manifest = read_manifest(checkpoint)
    return PolicySource(checkpoint, spec["name"], manifest.epoch, manifest.agent_step)


def load_evaluated_policy(uri: str | Path) -> tuple[nn.Module, PolicySource]:
    """The policy a URI names (on the CPU, bound to its own vocabularies) and where it is from."""
    policy, checkpoint = load_policy_with_source(uri)
    return policy, describe_checkpoint(checkpoint)


def eval_config(
    checkpoint: Path, recipe: str | None, overrides: list[str], device: str
) -> tuple[RunConfig, str]:
    """(config, where it came from) for evaluating `checkpoint`."""
    if recipe is not None:
        return build_config(recipe, overrides, default_device=device), f"recipe {recipe}"
    run_dir = run_dir_of(checkpoint)
    if run_dir is None or not (run_dir / CONFIG_FILE).is_file():
        raise NoGameError(
            f"{checkpoint} is not inside a run directory with a {CONFIG_FILE}; "
            "name the recipe to evaluate on: heartgrid eval URI RECIPE [key=value ...]"
        )
    config = apply_overrides(read_run_config(run_dir), overrides)
    source = str(run_dir / CONFIG_FILE)
    if not isinstance(config.curriculum.tasks, SingleTaskConfig):
        # Its tasks vary the game around `game` (maps, rewards, initial hearts, ...): the
        # numbers are the base game's, which training's records need not match.
        source += " (its base game; the run trained on a curriculum of tasks around it)"
    return config, source  # type: ignore[return-value]


def evaluate_on_game(
    policy: nn.Module,
    game: GameConfig,
    *,
    episodes: int,
    num_envs: int,
    device: str = "auto",
    seed: int = 0,
    greedy: bool = False,
    replays: ReplayRequest | None = None,
    replay_name: tuple[str, ...] = ("eval",),
) -> EvalResult:
    """Play `episodes` episodes of `policy` (as loaded by `load_evaluated_policy`) on `game`,
    with `min(num_envs, episodes)` envs. `replays`: record the first episode of its first
    envs, written as `<replay_name parts>__ep<env>.hgreplay` in its directory."""
    device = require_device(device)
    game = evaluation_game(game)
    engine = BatchedEngine(game, min(num_envs, episodes), device=device, seed=seed)
    note = untrained_note(policy, engine.features.names, engine.action_space.names)
    # Bind by name to this engine's features and actions, as `load_policy` does when given them.
    policy.adapt(engine.features, engine.action_space.names)
    if note:
        warnings.warn(note, stacklevel=2)
    npcs = (NpcPlayers(game, engine.num_envs, engine.features, engine.action_space.names,
                       engine.device, seed=seed) if game.npc_policy_uri is not None else None)
    npc_meta = npcs.replay_meta() if npcs is not None else {}
    recorders = replays.recorders(engine, **npc_meta) if replays is not None else []
    result = evaluate(
        policy.to(device), engine, episodes=episodes, max_steps=game.max_steps, greedy=greedy, seed=seed,
        recorders=recorders, npcs=npcs,
    )
    if replays is not None:
        replays.write(recorders, *replay_name)
    return result


def untrained_note(policy: nn.Module, features: list[str], actions: list[str]) -> str | None:
    """What of a game `policy` meets untrained, before it is bound to it (None if nothing): the
    actions it never scored get new random embeddings, and its own features that the game lacks
    read as zeros. (Features it never saw are ignored, as in training: no untrained weights.)"""
    head, inputs = getattr(policy, "action_head", None), getattr(policy, "inputs", None)
    if head is None or inputs is None:  # a user's module without the built-in binding
        return None
    trained_actions, observed = set(head.names), set(features)
    parts = []
    for what, names in (("actions it never trained on (their embeddings are new and random)",
                         [a for a in actions if a not in trained_actions]),
                        ("of its features this game lacks (they read as zeros)",
                         [f for f in inputs.names if f not in observed])):
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            parts.append(f"{len(names)} {what}: {shown}")
    if not parts:
        return None
    return (f"the policy meets this game partly untrained, so these scores may not measure what it "
            f"learned: {'; '.join(parts)}. Evaluate it on the game it trained on (for a run "
            "directory, name no recipe)")
