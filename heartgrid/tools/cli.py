"""The `heartgrid` command line.

Exit codes: 0 success, 1 a meaningful "no" (configs differ, a regression found), 2 usage
errors (unknown recipe, unknown config key, wrong value type, bad arguments).
Each verb lives in its own module with `register(subparsers)`; this file only assembles them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pydantic import ValidationError

from heartgrid.config.overrides import OverrideError, validation_message
from heartgrid.errors import UsageError
from heartgrid.recipes import UnknownRecipeError
from heartgrid.rundir import RunConfigError

# Modules that add verbs; each defines `register(subparsers)`.
COMMAND_MODULES = [
    "heartgrid.tools.config_cmd",  # recipes, config, diff, golden
    "heartgrid.tools.train_cmd",  # train
    "heartgrid.tools.bench_cmd",  # bench env, bench train
    "heartgrid.tools.plot",  # plot
    "heartgrid.tools.render",  # render
    "heartgrid.tools.eval_cmd",  # eval
    "heartgrid.tools.compare_cmd",  # ab, compare, baseline, regress
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heartgrid",
        description="Train teams of agents with RL in a multi-agent gridworld.",
    )
    sub = parser.add_subparsers(dest="command", metavar="VERB")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Like `python -m`, let `policy.name=my_module:MyPolicy` import from the working directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (OverrideError, UnknownRecipeError, UsageError, RunConfigError) as e:
        print(f"heartgrid {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ValidationError as e:
        print(f"heartgrid {args.command}: error: {validation_message(e)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print(f"heartgrid {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
