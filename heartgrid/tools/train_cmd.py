"""`heartgrid train RECIPE [key=value ...]`: resolve the config and hand it to the trainer."""

from __future__ import annotations

import argparse

from heartgrid.config.run import PolicyConfig
from heartgrid.errors import UsageError
from heartgrid.policies.registry import check_policy_config
from heartgrid.recipes import build_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a recipe; writes runs/<run>/ (config, metrics, TensorBoard, checkpoints)",
        description="Re-running with the same run name resumes from its latest valid checkpoint.",
    )
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", default=[], metavar="key=value")
    p.add_argument("--overwrite", action="store_true", help="delete an existing run directory first")
    p.add_argument("--no-resume", action="store_true", help="refuse to resume an existing run")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    config = build_config(args.recipe, args.overrides)
    check_policy(config.policy)
    from heartgrid.trainer.run import RunDirectoryError, train

    from heartgrid.checkpoint.errors import CheckpointError
    from heartgrid.engine.maps import MapError

    try:
        train(config, resume=False if args.no_resume else None, overwrite=args.overwrite)
    except (RunDirectoryError, CheckpointError, MapError) as e:
        # A run directory that cannot be resumed, a bad trainer.initial_policy, a map that
        # cannot be built: the command line asked for something impossible.
        raise UsageError(str(e)) from None
    return 0


def check_policy(policy: PolicyConfig) -> None:
    """A policy name, kwarg or core option the policy cannot take is a usage error (exit 2),
    found before any run directory is touched."""
    try:
        check_policy_config(policy)
    except ValueError as e:
        raise UsageError(str(e)) from None
