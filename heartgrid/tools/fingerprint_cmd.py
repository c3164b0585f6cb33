"""`heartgrid fingerprint`: record K PPO updates stage by stage, and find where two differ.

    heartgrid fingerprint RECIPE [key=value ...] [--updates K] [--out FILE]   record one
    heartgrid fingerprint A B                      compare: each a fingerprint file, a run
                                                   directory, a config file or "RECIPE key=value ..."
    heartgrid fingerprint RECIPE [key=value ...] --rev REV
                                                   the code at git revision REV (A) against the
                                                   working tree (B), same config
    heartgrid fingerprint --check [RECIPE ...]     against tests/golden/fingerprints (exit 1 on a
                                                   difference, naming the first divergent stage)
    heartgrid fingerprint --regenerate [RECIPE ...]   rewrite the golden files after an intended change

Exit codes: 0 equal (or recorded), 1 a difference, 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from heartgrid.errors import UsageError
from heartgrid.recipes import all_recipes, build_config

DEFAULT_GOLDEN = Path("tests") / "golden" / "fingerprints"

# Golden fingerprints of the non-default switches too: a switch a user turns on to A/B it is
# where a wrong result misleads most, so its behaviour is pinned like a recipe's.
SWITCH_VARIANTS: dict[str, tuple[str, list[str]]] = {
    "switch-micro_batches": ("small_easy_shaped", ["trainer.micro_batch_size=256"]),
    "switch-micro_batches_legacy": ("small_easy_shaped", ["trainer.micro_batch_size=256",
                                                          "trainer.grad_accumulation=legacy"]),
    "switch-prioritized": ("small_easy_shaped", ["trainer.minibatch_sampling=prioritized",
                                                 "trainer.prioritized.alpha=1"]),
    "switch-muon": ("small_easy_shaped", ["trainer.optimizer.type=muon"]),
    "switch-gae": ("small_easy_shaped", ["trainer.advantages=gae"]),
    "switch-refreshed_values": ("small_easy_shaped", ["trainer.value_target=refreshed"]),
    # Not a switch: clip ranges so narrow that both PPO clips act from the second minibatch on.
    # At the recipes' ranges neither acts within the recorded updates, so an edit of either
    # clipped branch (max for min) would pass every other golden.
    "switch-tight_clips": ("small_easy_shaped", ["trainer.clip_coef=0.001", "trainer.vf_clip_coef=0.0001"]),
}


def golden_configs() -> dict[str, tuple[str, list[str]]]:
    """Name -> (recipe, overrides) of every golden fingerprint: the recipes, then the switches."""
    return {**{name: (name, []) for name in sorted(all_recipes())}, **SWITCH_VARIANTS}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fingerprint", help="record K PPO updates stage by stage; name the first stage where two runs differ",
        description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("items", nargs="*", metavar="RECIPE|A B", help="a recipe and overrides, or two sides to compare")
    p.add_argument("--updates", type=int, default=None, help="PPO updates to record (default 2)")
    p.add_argument("--out", type=Path, help="write the fingerprint (or, comparing, B's) as JSON")
    p.add_argument("--rev", help="compare the code at this git revision with the working tree")
    p.add_argument("--check", action="store_true", help="compare recipes with their golden fingerprints")
    p.add_argument("--regenerate", action="store_true", help="rewrite the golden fingerprints")
    p.add_argument("--golden", type=Path, default=DEFAULT_GOLDEN, help=f"golden directory (default {DEFAULT_GOLDEN})")
    p.set_defaults(func=cmd_fingerprint)


def cmd_fingerprint(args: argparse.Namespace) -> int:
    from heartgrid.fingerprint import DEFAULT_UPDATES

    updates = DEFAULT_UPDATES if args.updates is None else args.updates
    if updates < 1:
        raise UsageError(f"--updates must be at least 1, got {updates}")
    if args.check or args.regenerate:
        return golden(args, updates)
    if not args.items:
        raise UsageError("give a recipe, two sides to compare, or --check")
    if args.rev:
        return against_revision(args, updates)
    if len(args.items) == 2 and not is_override(args.items[1]):
        return compare_sides(args.items[0], args.items[1], updates, args.out)
    fingerprint = capture_spec(shlex.join(args.items), updates)
    print(f"{fingerprint.label}: {len(fingerprint.checks)} checks over {updates} updates in {fingerprint.seconds:.1f}s")
    if args.out:
        fingerprint.save(args.out)
        print(f"wrote {args.out}")
    return 0


def is_override(item: str) -> bool:
    """`trainer.gamma=0.9`, as opposed to a side such as `"small_easy_shaped trainer.gamma=0.9"`."""
    return re.match(r"[A-Za-z_][\w.\-]*=", item) is not None


def capture_spec(spec: str, updates: int):
    """A fingerprint from a side: a fingerprint file, or any config `heartgrid diff` takes."""
    from heartgrid.fingerprint import Fingerprint, capture
    from heartgrid.tools.config_cmd import resolve_side

    path = Path(spec)
    if path.suffix == ".json" and "=" not in spec and not path.exists():  # a file's name, not a side with overrides
        raise UsageError(f"{path}: no such fingerprint file")
    if path.is_file() and path.suffix == ".json" and '"checks"' in path.read_text()[:1_000_000]:
        try:
            return Fingerprint.load(path)
        except (ValueError, KeyError) as e:
            raise UsageError(f"{path}: not a readable fingerprint ({e})") from None
    return capture(resolve_side(spec), updates, label=spec)


def report(a, b) -> int:
    from heartgrid.config.diff import diff_configs, format_diff
    from heartgrid.fingerprint import first_divergence

    rows = diff_configs(a.config, b.config)
    if rows:
        print(f"configs differ (A -> B), {len(rows)} path(s):\n{format_diff(rows)}")
    divergence = first_divergence(a, b)
    if divergence is None:
        print(f"same behaviour: {len(a.checks)} checks agree over {a.updates} updates (A {a.label!r}, B {b.label!r})")
        return 0
    print(divergence.message())
    return 1


def compare_sides(spec_a: str, spec_b: str, updates: int, out: Path | None) -> int:
    a, b = capture_spec(spec_a, updates), capture_spec(spec_b, updates)
    if out:
        b.save(out)
    return report(a, b)


def golden(args: argparse.Namespace, updates: int) -> int:
    from heartgrid.fingerprint import Fingerprint, capture
    from heartgrid.fingerprint.golden import cpu_vendor, golden_dir

    known = golden_configs()
    names = args.items or list(known)
    if args.check and not args.golden.is_dir():
        raise UsageError(f"no golden fingerprints in {args.golden} (run from the repository root, or --golden DIR)")
    directory = golden_dir(args.golden)  # this CPU vendor's files (fingerprint/golden.py)
    if args.check and not directory.is_dir():
        raise UsageError(f"no golden fingerprints for this CPU vendor ({cpu_vendor()}) in {directory}: float "
                         f"kernels differ between vendors; run `heartgrid fingerprint --regenerate` to write them")
    failed = []
    for recipe in names:
        base, overrides = known.get(recipe, (recipe, []))
        current = capture(build_config(base, overrides, default_device="cpu"), updates, label=recipe)
        path = directory / f"{recipe}.json"
        if args.regenerate:
            directory.mkdir(parents=True, exist_ok=True)
            current.save(path)
            print(f"wrote {path} ({len(current.checks)} checks, {current.seconds:.1f}s)")
            continue
        if not path.exists():
            raise UsageError(f"no golden fingerprint {path}; run `heartgrid fingerprint --regenerate {recipe}`")
        stored = Fingerprint.load(path)
        print(f"{recipe}: ", end="")
        if report(stored, current):
            failed.append(recipe)
    if failed:
        print(f"\n{len(failed)} recipe(s) behave differently: {', '.join(failed)}. If intended, run "
              f"`heartgrid fingerprint --regenerate` and commit the diff of {directory}.")
        return 1
    return 0


def against_revision(args: argparse.Namespace, updates: int) -> int:
    """Record the same config with the code of `args.rev` (in a temporary git worktree, run by
    this Python) and with the working tree, and compare them."""
    # Paths (a run directory, a config file) are the user's, not the worktree's.
    items = [str(Path(item).resolve()) if Path(item).exists() else item for item in args.items]
    spec = shlex.join(items)
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="heartgrid-rev-") as tmp:
        tree, out = Path(tmp) / "tree", Path(tmp) / "a.json"
        added = subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tree), args.rev],
                               capture_output=True, text=True)
        if added.returncode != 0:
            raise UsageError(f"cannot check out {args.rev!r}: {added.stderr.strip()}")
        try:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            recorded = subprocess.run(
                [sys.executable, "-m", "heartgrid.tools.cli", "fingerprint", *items,
                 "--updates", str(updates), "--out", str(out)],
                cwd=tree, env=env, capture_output=True, text=True,
            )
            if recorded.returncode != 0:
                raise UsageError(f"recording {spec!r} at {args.rev} failed (a revision before "
                                 f"`heartgrid fingerprint` existed cannot be recorded):\n{recorded.stderr.strip()}")
            from heartgrid.fingerprint import Fingerprint

            try:
                a = Fingerprint.load(out)
            except (ValueError, KeyError) as e:
                raise UsageError(f"the fingerprint recorded at {args.rev} cannot be read by this version: {e}") from None
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], capture_output=True)
    a.label = f"{args.rev}: {spec}"
    b = capture_spec(spec, updates)
    b.label = f"working tree: {spec}"
    if args.out:
        b.save(args.out)
    return report(a, b)

