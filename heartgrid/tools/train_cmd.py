"""`heartgrid train RECIPE [key=value ...]`: resolve the config and hand it to the trainer."""

from __future__ import annotations

import argparse
import sys

from heartgrid.config.run import PolicyConfig
from heartgrid.errors import EXIT_FILE_FAULT, FileFault, UsageError
from heartgrid.interrupts import EXIT_STOPPED, StopRequest, say
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
    """Exit status 0 finished; 2 usage (also: the run directory is in use); 3 stopped by Ctrl-C
    or a stop signal after saving (the same command resumes); 4 a file-system fault."""
    config = build_config(args.recipe, args.overrides)
    check_policy(config.policy)
    from heartgrid.trainer.run import RunDirectoryError, signal_words, train_run

    from heartgrid.checkpoint.errors import CheckpointError
    from heartgrid.engine.maps import MapError
    from heartgrid.rundir.lock import RunLockedError

    # Listening from here: a stop signal while the trainer starts up (imports, a resume's
    # checkpoint) stops it cleanly too, rather than killing it.
    stop = StopRequest()
    try:
        with stop.on_signals(config.system.stop_signals):
            outcome = train_run(config, resume=False if args.no_resume else None, overwrite=args.overwrite,
                                stop=stop)
    except (RunDirectoryError, RunLockedError, CheckpointError, MapError) as e:
        # A run directory that cannot be resumed or is in use, a bad trainer.initial_policy, a
        # map that cannot be built: the command line asked for something impossible.
        raise UsageError(str(e)) from None
    except FileFault as e:
        print(f"heartgrid train: error: {e}", file=sys.stderr)
        return EXIT_FILE_FAULT
    if outcome.stopped_by is not None:
        saved = f"checkpoint of epoch {outcome.epoch} saved" if outcome.epoch else "no checkpoint yet"
        say(f"heartgrid train: stopped by {signal_words(outcome.stopped_by)} ({saved}); run the same "
            f"command again to {'resume' if outcome.epoch else 'start again'}", err=True)
        return EXIT_STOPPED
    return 0


def check_policy(policy: PolicyConfig) -> None:
    """A policy name, kwarg or core option the policy cannot take is a usage error (exit 2),
    found before any run directory is touched."""
    try:
        check_policy_config(policy)
    except ValueError as e:
        raise UsageError(str(e)) from None
