"""`heartgrid train RECIPE [key=value ...]`: resolve the config and hand it to the trainer.

Under torchrun (`torchrun --nproc_per_node N -m heartgrid train ...`) every rank runs this,
joins the process group and trains its share (docs/distributed.md); `--nproc N` starts torchrun
for one machine (heartgrid/tools/torchrun.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from heartgrid.config.run import PolicyConfig
from heartgrid.devices import require_device
from heartgrid.errors import EXIT_FILE_FAULT, FileFault, UsageError, check_output_path
from heartgrid.interrupts import EXIT_STOPPED, StopRequest, say
from heartgrid.policies.registry import check_policy_config
from heartgrid.recipes import build_config
from heartgrid.tools.torchrun import check_nproc, launch


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
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="train on N processes of this machine (torch.distributed through torchrun: one per "
                        "GPU, or CPU processes with gloo); trainer.num_envs and batch sizes are per process")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """Exit status 0 finished; 2 usage (also: the run directory is in use); 3 stopped by Ctrl-C
    or a stop signal after saving (the same command resumes); 4 a file-system fault."""
    config = build_config(args.recipe, args.overrides)
    check_policy(config.policy)
    # Usage errors found before anything is made on disk (the run directory's lock creates it).
    require_device(config.system.device)
    check_output_path(Path(config.data_dir), "data_dir=", directory=True)
    if args.nproc is not None:
        check_nproc(args.nproc)
        if args.nproc > 1:
            return launch_ranks(args, config)
    from heartgrid.trainer.distributed import WorldError, is_collective_error, lost_contact
    from heartgrid.trainer.world_start import RankFailed, start_world, stop_world, with_world_size
    from heartgrid.trainer.run import RunDirectoryError, signal_words, train_run

    from heartgrid.checkpoint.errors import CheckpointError
    from heartgrid.engine.maps import MapError
    from heartgrid.rundir.lock import RunLockedError

    config = with_world_size(config)
    # Listening from here: a stop signal while the trainer starts up (imports, a resume's
    # checkpoint) stops it cleanly too, rather than killing it.
    stop = StopRequest()
    world = None
    try:
        with stop.on_signals(config.system.stop_signals, until_exit=getattr(args, "whole_process", False)):
            world = start_world(config)
            outcome = train_run(config, resume=False if args.no_resume else None, overwrite=args.overwrite,
                                stop=stop, world=world)
    except (RunDirectoryError, RunLockedError, CheckpointError, MapError) as e:
        # A run directory that cannot be resumed or is in use, a bad trainer.initial_policy, a
        # map that cannot be built: the command line asked for something impossible.
        raise UsageError(str(e)) from None
    except FileFault as e:
        print(f"heartgrid train: error: {e}", file=sys.stderr)
        return EXIT_FILE_FAULT
    except RankFailed as e:
        print(f"heartgrid train: error: {e}", file=sys.stderr)
        return e.status
    except Exception as e:
        if world is None or not is_collective_error(e):
            raise
        # Another rank is gone: one line, not the traceback of a collective.
        message = str(e) if isinstance(e, WorldError) else lost_contact(world, "training", e)
        print(f"heartgrid train: error: {message}", file=sys.stderr)
        return 1
    stop_world(world)
    if outcome.stopped_by is not None:
        if world is None or world.is_main:
            saved = f"checkpoint of epoch {outcome.epoch} saved" if outcome.epoch else "no checkpoint yet"
            say(f"heartgrid train: stopped by {signal_words(outcome.stopped_by)} ({saved}); run the same "
                f"command again to {'resume' if outcome.epoch else 'start again'}", err=True)
        return EXIT_STOPPED
    return 0


def launch_ranks(args: argparse.Namespace, config) -> int:
    """`--nproc N`: this command on N ranks of this machine through torchrun, checked here first
    so that a bad command line is told once, not by every rank."""
    asked = config.distributed.world_size
    if asked not in (1, args.nproc):
        raise UsageError(f"distributed.world_size={asked} but --nproc {args.nproc}; leave distributed.world_size "
                         "out (it is filled in at launch)")
    argv = ["train", args.recipe, *args.overrides]
    argv += ["--overwrite"] * args.overwrite + ["--no-resume"] * args.no_resume
    status, _ = launch(args.nproc, argv, verb="train", signals=config.system.stop_signals)
    return status


def check_policy(policy: PolicyConfig) -> None:
    """A policy name, kwarg or core option the policy cannot take is a usage error (exit 2),
    found before any run directory is touched."""
    try:
        check_policy_config(policy)
    except ValueError as e:
        raise UsageError(str(e)) from None
