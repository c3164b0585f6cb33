"""`heartgrid eval URI [RECIPE] [key=value ...]`: play a saved policy and report how it does.

URI: a checkpoint directory, a run directory (its newest valid checkpoint), a policy.safetensors
file, or file://<path>. Without RECIPE the game is the one the checkpoint's run trained on.
Prints hearts per agent (`heart.get`), reward per agent and episode length over the episodes;
with --json the last line is the full summary as one JSON object.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from heartgrid.checkpoint.errors import CheckpointError
from heartgrid.evaluation.evaluate import EvalResult
from heartgrid.evaluation.run import (
    NoGameError,
    PolicySource,
    eval_config,
    evaluate_on_game,
    load_evaluated_policy,
)
from heartgrid.errors import UsageError
from heartgrid.rundir import RunConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="play a saved policy for whole episodes; report hearts, reward, episode length",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("uri", help="checkpoint dir, run dir, policy.safetensors, or file://...")
    p.add_argument(
        "args", nargs="*", metavar="[RECIPE] key=value",
        help="recipe to play (default: the run's own config.json) and config overrides",
    )
    p.add_argument("--episodes", type=int, help="episodes to play (default evaluation.episodes)")
    p.add_argument("--num-envs", type=int, help="envs played at once (default evaluation.num_envs)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--seed", type=int, help="maps and sampling seed (default system.seed)")
    p.add_argument("--greedy", action="store_true", help="take the most likely action, not a sample")
    p.add_argument("--json", action="store_true", help="also print the summary as JSON, last line")
    p.set_defaults(func=cmd_eval)


def split_recipe(args: list[str]) -> tuple[str | None, list[str]]:
    """`[RECIPE] key=value ...` → (recipe or None, overrides)."""
    if args and "=" not in args[0]:
        return args[0], args[1:]
    return None, list(args)


def cmd_eval(args: argparse.Namespace) -> int:
    recipe, overrides = split_recipe(args.args)
    for name, value in (("--episodes", args.episodes), ("--num-envs", args.num_envs)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    try:
        policy, source = load_evaluated_policy(args.uri)
        config, game_source = eval_config(source.checkpoint, recipe, overrides, args.device)
        seed = config.system.seed if args.seed is None else args.seed
    except (CheckpointError, NoGameError, RunConfigError) as e:
        raise UsageError(str(e)) from None
    try:
        result = evaluate_on_game(
            policy,
            config.game,
            episodes=args.episodes or config.evaluation.episodes,
            num_envs=args.num_envs or config.evaluation.num_envs,
            device=args.device,
            seed=seed,
            greedy=args.greedy,
        )
    except ValueError as e:
        # The policy cannot play this game (e.g. `fast` trained on another window size); the
        # policy's message says why and what to do.
        raise UsageError(f"{source.checkpoint}: {e}") from None

    summary = report(result, source, game_source, greedy=args.greedy, seed=seed)
    print(format_report(summary))
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    return 0


def report(
    result: EvalResult, source: PolicySource, game_source: str, *, greedy: bool, seed: int
) -> dict[str, Any]:
    return {
        "checkpoint": str(source.checkpoint),
        "policy": source.name,
        "epoch": source.epoch,
        "agent_step": source.agent_step,
        "game": game_source,
        "actions": "greedy" if greedy else "sampled",
        "seed": seed,
        **result.summary(),
    }


def format_report(summary: dict[str, Any]) -> str:
    trained = ""
    if summary["epoch"] is not None:
        trained = f", epoch {summary['epoch']}, agent_step {summary['agent_step']:,}"
    lines = [
        f"policy   {summary['checkpoint']} ({summary['policy']}{trained})",
        f"game     {summary['game']}; {summary['episodes']} episodes, "
        f"{summary['actions']} actions, seed {summary['seed']}",
    ]
    rows = [
        ("hearts per agent (heart.get)", summary["heart.get"]),
        ("reward per agent", summary["reward"]),
        ("episode length", summary["episode_length"]),
    ]
    for label, stats in rows:
        if stats is None:
            lines.append(f"{label:<30} not reported by the engine")
            continue
        lines.append(
            f"{label:<30} mean {stats['mean']:9.3f}  std {stats['std']:8.3f}  "
            f"min {stats['min']:9.3f}  max {stats['max']:9.3f}"
        )
    return "\n".join(lines)
