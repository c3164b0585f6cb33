"""Verbs about configuration: `recipes`, `config`, `diff`, `golden`."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from heartgrid.config.diff import diff_configs, format_diff
from heartgrid.config.run import RunConfig
from heartgrid.recipes import all_recipes, build_config
from heartgrid.rundir import read_run_config
from heartgrid.tools.train_cmd import check_policy

GOLDEN_DIR = Path("tests/golden")
GOLDEN_DEVICE = "cpu"  # golden configs are resolved for the CPU so they are machine-independent


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipes", help="list the registered recipes")
    p.set_defaults(func=cmd_recipes)

    p = sub.add_parser("config", help="print the fully resolved config of a recipe as JSON")
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", default=[], metavar="key=value")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser(
        "diff",
        help="differences between two configs (exit 0 identical, 1 different)",
        description="Each side is a recipe (quote it with its overrides: \"arena trainer.gamma=0.99\"), "
        "a config JSON file or a run directory.",
    )
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--device", default="cpu", help="device recipes resolve for (default cpu)")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("golden", help="write the resolved config of every recipe to a directory")
    p.add_argument("directory", nargs="?", default=str(GOLDEN_DIR))
    p.set_defaults(func=cmd_golden)


def cmd_recipes(args: argparse.Namespace) -> int:
    recipes = all_recipes()
    width = max(len(n) for n in recipes)
    for name, recipe in recipes.items():
        print(f"{name:<{width}}  {recipe.summary}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    config = build_config(args.recipe, args.overrides)
    check_policy(config.policy)
    print(config.to_json())
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    # A directory that is not a run raises RunConfigError, which the CLI maps to exit 2.
    a, b = resolve_side(args.a, args.device), resolve_side(args.b, args.device)
    rows = diff_configs(a, b)
    if rows:
        print(format_diff(rows))
    return 1 if rows else 0


def golden_configs() -> dict[str, str]:
    """recipe name -> resolved config JSON, as stored under tests/golden/."""
    return {name: build_config(name, [], default_device=GOLDEN_DEVICE).to_json() + "\n" for name in all_recipes()}


def cmd_golden(args: argparse.Namespace) -> int:
    out = Path(args.directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in golden_configs().items():
        (out / f"{name}.json").write_text(text)
        print(f"wrote {out / f'{name}.json'}")
    return 0


def resolve_side(spec: str, device: str = "cpu") -> RunConfig:
    """A side of `diff`: a run directory, a config JSON file, or `RECIPE [key=value ...]`."""
    path = Path(spec)
    if path.is_dir():
        return read_run_config(path)
    if path.suffix == ".json" and path.is_file():
        return RunConfig.load(path)
    words = shlex.split(spec)
    return build_config(words[0], words[1:], default_device=device)
