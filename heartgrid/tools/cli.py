"""The `heartgrid` command line.

Exit codes: 0 success, 1 a meaningful "no" (configs differ, a regression found), 2 usage
errors (unknown recipe, unknown config key, wrong value type, bad arguments).
Each verb lives in its own module with `register(subparsers)`; this file only assembles them.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.metadata
import os
import platform
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO

from pydantic import ValidationError

import heartgrid
from heartgrid.allocator import keep_freed_memory
from heartgrid.config.overrides import OverrideError, validation_message
from heartgrid.devices import DeviceError
from heartgrid.engine.native import NativeUnavailable
from heartgrid.errors import EXIT_FILE_FAULT, FileFault, UsageError
from heartgrid.recipes import UnknownRecipeError
from heartgrid.rundir import RunConfigError
from heartgrid.rundir.faults import file_fault, is_file_error
from heartgrid.tools.cli_hints import unrecognized_hint

# Modules that add verbs; each defines `register(subparsers)`.
COMMAND_MODULES = [
    "heartgrid.tools.config_cmd",  # recipes, config, diff, golden
    "heartgrid.tools.train_cmd",  # train
    "heartgrid.tools.bench_cmd",  # bench env, bench train
    "heartgrid.tools.plot",  # plot
    "heartgrid.tools.render",  # render
    "heartgrid.tools.replay_cmd",  # replay
    "heartgrid.tools.play_cmd",  # play
    "heartgrid.tools.eval_cmd",  # eval
    "heartgrid.tools.suites_cmd",  # suites
    "heartgrid.tools.stats_cmd",  # stats
    "heartgrid.tools.compare_cmd",  # ab, compare, baseline, regress
    "heartgrid.tools.fingerprint_cmd",  # fingerprint
    "heartgrid.tools.sweep_cmd",  # sweep, sweep show
]


class Parser(argparse.ArgumentParser):
    """argparse with a `did you mean` for a mistyped choice: `heartgrid trian`, `bench evn`.
    Sub-parsers are made of the same class (argparse uses the parent's type by default)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            verb = self._verb_parser()
            message += unrecognized_hint(verb, getattr(self, "_words", []), message.split()[2:],
                                         _long_options(verb))
            argparse.ArgumentParser.error(verb, message)  # the verb's usage line, not the root's
        if message == "the following arguments are required: recipe":
            message += " (`heartgrid recipes` lists them)"
        elif message == "the following arguments are required: VERB":
            message += " (`heartgrid --help` lists them, with what each does)"
        super().error(message)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._words = list(sys.argv[1:] if args is None else args)  # for _verb_parser
        return super().parse_known_args(args, namespace)

    def _verb_parser(self) -> argparse.ArgumentParser:
        """The deepest verb named on the command line (`bench env`), whose options a mistyped
        one is matched against: the root parser reports it, without knowing the verb."""
        parser: argparse.ArgumentParser = self
        for word in getattr(self, "_words", []):
            verbs = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
            if word in verbs:
                parser = verbs[word]
        return parser

    # argparse's one check of `choices` (a private hook, unchanged from Python 3.11 to 3.13;
    # 3.14 has its own `suggest_on_error`).
    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices and isinstance(value, str):
            close = difflib.get_close_matches(value, [str(c) for c in action.choices], n=1)
            if close:
                choices = ", ".join(repr(c) for c in action.choices)
                # parse_args turns this into usage + `error: ...` and exit status 2, as before.
                raise argparse.ArgumentError(
                    action, f"invalid choice: {value!r}; did you mean {close[0]!r}? (choose from {choices})"
                )
        super()._check_value(action, value)


def _long_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every --option of `parser` and of its verbs, for a suggestion after a mistyped one."""
    found: set[str] = set()
    for action in parser._actions:
        found.update(option for option in action.option_strings if option.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _long_options(sub)
    return found


PACKAGE_DIR = Path(__file__).resolve().parents[1]


@contextmanager
def one_line_warnings(command: str) -> Iterator[None]:
    """While a verb runs, show every warning as one line on stderr, `heartgrid VERB: warning:
    ...`, instead of Python's `path.py:123: Category: message` and the source line after it.
    Nothing is suppressed: which warnings show (the filters) is unchanged. Restored after, since
    tests and scripts call `main` in-process."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        text = " ".join(str(message).split())  # one line, whatever the message holds
        if not (category.__module__.startswith("heartgrid.") or _inside(filename, PACKAGE_DIR)):
            # Another library's warning: say whose it is, so it can be looked up or filtered.
            text = f"{text} ({category.__name__} from {_short_source(filename)}:{lineno})"
        try:
            print(f"heartgrid {command}: warning: {text}", file=file or sys.stderr)
        except OSError:
            pass  # stderr is gone (a closed pipe); a warning is not worth failing for

    with warnings.catch_warnings():  # restores showwarning (and the filters) on the way out
        warnings.showwarning = show
        yield


def _inside(filename: str, directory: Path) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(directory)
    except (OSError, ValueError):
        return False


def _short_source(filename: str) -> str:
    """`torch/nn/modules/rnn.py` rather than the whole path into the virtual environment."""
    marker = f"site-packages{os.sep}"
    return filename.split(marker, 1)[1] if marker in filename else filename


def version_line() -> str:
    """heartgrid's version with the Python and torch it runs on (what a bug report needs)."""
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "not installed"
    return f"heartgrid {heartgrid.__version__} (Python {platform.python_version()}, torch {torch_version})"


class VersionAction(argparse.Action):
    """--version, its line made only when asked for: reading torch's package metadata costs
    ~40 ms, which every other command would pay at start-up."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any):
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="print heartgrid's, Python's and torch's versions and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None) -> None:
        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="heartgrid",
        description="Train teams of agents with RL in a multi-agent gridworld.",
    )
    parser.add_argument("--version", action=VersionAction)
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
    args.whole_process = argv is None  # the process's own command line, not a call from Python
    if args.whole_process:
        keep_freed_memory()
    try:
        with one_line_warnings(args.command):
            return int(args.func(args) or 0)
    except (OverrideError, UnknownRecipeError, UsageError, RunConfigError, DeviceError, NativeUnavailable) as e:
        print(f"heartgrid {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ValidationError as e:
        print(f"heartgrid {args.command}: error: {validation_message(e)}", file=sys.stderr)
        return 2
    except FileFault as e:
        print(f"heartgrid {args.command}: error: {e}", file=sys.stderr)
        return EXIT_FILE_FAULT
    except BrokenPipeError:
        return 0
    except OSError as e:
        # The file system refused a read or write the command did not handle itself (a
        # read-only --out, a file where a directory goes): one line naming the file, exit 4 as
        # for every file fault. A network error, or one naming no file, keeps its traceback.
        if not is_file_error(e):
            raise
        print(f"heartgrid {args.command}: error: {file_fault(e)}", file=sys.stderr)
        return EXIT_FILE_FAULT
    except KeyboardInterrupt:
        print(f"heartgrid {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
