"""`heartgrid eval URI [RECIPE] [key=value ...]`: play a saved policy and report how it does.
`heartgrid eval URI [URI ...] --suite SUITE`: score policies on every simulation of a suite.

URI: a checkpoint directory, a run directory (its newest valid checkpoint), a policy.safetensors
file, or file://<path>. Without RECIPE the game is the one the checkpoint's run trained on
(its config.json's `game`: for a run that trained on a curriculum, the base game its tasks vary,
which the report's `game` line then says).
Prints hearts per agent (`heart.get`), reward per agent and episode length over the episodes;
with --json the last line is the full summary as one JSON object.

With --suite (a built-in suite, `heartgrid suites` lists them, or a suite file), every policy
plays every simulation on the same seeds, hence the same maps, and a scorecard is printed:
policies x simulations, mean score with its 95% confidence interval, category means and an
overall score (how a score is normalised is printed under the table). --out writes it as JSON,
--json prints that JSON as the last line, --stats-db appends every episode to a DuckDB stats
database (`heartgrid stats DB scorecard|sql|plot` reads it).

--replays DIR records replays (docs/replays.md): the first episode of a recipe evaluation, or
of each simulation of a suite (per policy); --replay-episodes N records the first N envs'
episodes instead. `heartgrid replay DIR` watches them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from heartgrid.checkpoint.errors import CheckpointError
from heartgrid.checkpoint.uri import run_dir_of
from heartgrid.devices import resolve_device
from heartgrid.evaluation.evaluate import EvalResult
from heartgrid.evaluation.policy_sources import policy_from_uri
from heartgrid.evaluation.scorecard import Result, Scorecard
from heartgrid.evaluation.scorecard_text import cell, counted, format_scorecard
from heartgrid.evaluation.run import (
    NoGameError,
    PolicySource,
    eval_config,
    evaluate_on_game,
    load_evaluated_policy,
)
from heartgrid.evaluation.stats_db import StatsDbError, merge_shards, refuse_other_file, shards_dir, write_shard
from heartgrid.evaluation.suite_eval import evaluate_suite
from heartgrid.evaluation.suites import load_suite, select
from heartgrid.errors import EXIT_FILE_FAULT, UsageError, check_output_path, check_seed
from heartgrid.replay.requests import ReplayRequest
from heartgrid.rundir import RunConfigError
from heartgrid.rundir.faults import file_fault
from heartgrid.threads import LoadMeter, crowded


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="play a saved policy for whole episodes; report hearts, reward, episode length",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("uri", help="checkpoint dir, run dir, policy.safetensors, or file://...")
    p.add_argument(
        "args", nargs="*", default=[], metavar="[RECIPE] key=value | URI",
        help="recipe to play (default: the run's own config.json) and config overrides; "
             "with --suite: more policy URIs",
    )
    p.add_argument("--suite", help="score the policies on every simulation of this suite "
                                   "(a built-in name, a .json/.yaml/.py suite file or module:ATTRIBUTE)")
    p.add_argument("--simulation", action="append", default=[], metavar="NAME",
                   help="with --suite: only this simulation (category/name or name; repeatable)")
    p.add_argument("--stats-db", type=Path, metavar="PATH",
                   help="with --suite: append the episodes to this DuckDB stats database")
    p.add_argument("--out", type=Path, metavar="JSON", help="with --suite: write the scorecard here")
    p.add_argument("--episodes", type=int,
                   help="episodes to play (default evaluation.episodes; with --suite: per "
                        "simulation, default each simulation's own)")
    p.add_argument("--num-envs", type=int, help="envs played at once (default evaluation.num_envs)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--seed", type=int, help="maps and sampling seed (default system.seed; with "
                                            "--suite: replaces every simulation's own seed)")
    p.add_argument("--greedy", action="store_true", help="take the most likely action, not a sample")
    p.add_argument("--torch-threads", type=int, metavar="N",
                   help="torch threads on a CPU (default torch's: one per core, whatever the "
                        "load, so that a seeded evaluation gives the same scores on a busy machine)")
    p.add_argument("--json", action="store_true", help="also print the summary as JSON, last line")
    p.add_argument("--replays", type=Path, metavar="DIR",
                   help="write replays here (*.hgreplay; `heartgrid replay DIR` shows them): the "
                        "first episode, or with --suite the first of each simulation")
    p.add_argument("--replay-episodes", type=int, metavar="N",
                   help="with --replays: record the first episode of N envs (default 1; a "
                        "suite's simulation plays one episode per env)")
    p.set_defaults(func=cmd_eval)


def split_recipe(args: list[str]) -> tuple[str | None, list[str]]:
    """`[RECIPE] key=value ...` → (recipe or None, overrides)."""
    if args and "=" not in args[0]:
        return args[0], args[1:]
    return None, list(args)


def cmd_eval(args: argparse.Namespace) -> int:
    for name, value in (("--episodes", args.episodes), ("--num-envs", args.num_envs),
                        ("--torch-threads", args.torch_threads), ("--replay-episodes", args.replay_episodes)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    if args.replay_episodes is not None and args.replays is None:
        raise UsageError("--replay-episodes needs --replays DIR")
    if args.suite is None:
        for flag, value in (("--simulation", args.simulation), ("--stats-db", args.stats_db), ("--out", args.out)):
            if value:
                raise UsageError(f"{flag} needs --suite SUITE (`heartgrid suites` lists them)")
    # Output paths are checked now, not after the evaluation has run.
    for given, path in (("--out ", args.out), ("--stats-db ", args.stats_db)):
        if path is not None:
            check_output_path(path, given)
    if args.stats_db is not None:
        check_output_path(shards_dir(args.stats_db), "--stats-db ", directory=True)
        refuse_other_file(args.stats_db)
    if args.replays is not None:
        check_output_path(args.replays, "--replays ", directory=True)
        try:
            args.replays.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            print(f"heartgrid eval: error: {file_fault(e, 'choose another --replays directory')}",
                  file=sys.stderr)
            return EXIT_FILE_FAULT
    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    device = resolve_device(args.device, "--device")  # here, not as a refused checkpoint
    check_seed(args.seed)
    load = LoadMeter()
    code = eval_suite(args) if args.suite is not None else eval_game(args)
    on_cpu = device.startswith("cpu")
    if on_cpu and args.torch_threads is None and (note := crowded_note(load.read(), len(load.cpus))):
        print(f"heartgrid eval: {note}", file=sys.stderr)
    return code


def crowded_note(busy: float | None, cpus: int) -> str | None:
    """When other processes kept busy cores the evaluation's threads needed: eval keeps torch's
    count (one per core) so that seeded scores do not depend on the load, and says so."""
    threads = min(torch.get_num_threads(), cpus)
    free = None if busy is None else crowded(threads, cpus, busy)
    if free is None:
        return None
    return (f"note: other processes kept {busy:.1f} of the {cpus} cores busy while this evaluation ran "
            f"on {threads} torch threads; --torch-threads {free} is faster on a shared "
            "machine (a seeded evaluation on another thread count can sample other actions)")


def eval_game(args: argparse.Namespace) -> int:
    """`heartgrid eval URI [RECIPE] [key=value ...]`: one policy on one game."""
    recipe, overrides = split_recipe(args.args)
    try:
        policy, source = load_evaluated_policy(args.uri)
        config, game_source = eval_config(source.checkpoint, recipe, overrides, args.device)
        seed = config.system.seed if args.seed is None else args.seed
    except (CheckpointError, NoGameError, RunConfigError) as e:
        raise UsageError(str(e)) from None
    replays = replay_request(args, policy=args.uri, recipe=recipe or config.recipe or None, seed=seed,
                             source=source)
    try:
        result = evaluate_on_game(
            policy,
            config.game,
            episodes=args.episodes or config.evaluation.episodes,
            num_envs=args.num_envs or config.evaluation.num_envs,
            device=args.device,
            seed=seed,
            greedy=args.greedy,
            replays=replays,
            replay_name=(policy_label(source), recipe or config.recipe or "run-config"),
        )
    except OSError as e:  # a replay that could not be written: one line naming it, exit 4
        print(f"heartgrid eval: error: {file_fault(e, 'choose another --replays directory, or free space')}",
              file=sys.stderr)
        return EXIT_FILE_FAULT
    except ValueError as e:
        # The policy cannot play this game (e.g. `fast` trained on another window size); the
        # policy's message says why and what to do.
        raise UsageError(f"{source.checkpoint}: {e}") from None

    summary = report(result, source, game_source, greedy=args.greedy, seed=seed)
    print(format_report(summary))
    print_replays(replays)
    if replays is not None:
        summary["replays"] = [str(p) for p in replays.written]
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    return 0


def replay_request(args: argparse.Namespace, **meta: Any) -> ReplayRequest | None:
    """--replays DIR (and --replay-episodes N) as a request, with the meta every replay shares."""
    if args.replays is None:
        return None
    source: PolicySource | None = meta.pop("source", None)
    if source is not None:
        meta.update(epoch=source.epoch, agent_step=source.agent_step)
    return ReplayRequest(args.replays, args.replay_episodes or 1, {"source": "eval", **meta})


def policy_label(source: PolicySource) -> str:
    """`<run>@<epoch>` for a run's checkpoint, else the checkpoint directory's name."""
    run_dir = run_dir_of(source.checkpoint)
    if run_dir is not None and source.epoch is not None:
        return f"{run_dir.name}@{source.epoch}"
    return source.checkpoint.name


def print_replays(replays: ReplayRequest | None) -> None:
    if replays is not None and replays.written:
        print(f"replays: {len(replays.written)} written to {replays.directory} "
              f"(heartgrid replay {replays.directory})")


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
        f"game     {summary['game']}; {counted(summary['episodes'], 'episode', 'episodes')}, "
        f"{summary['actions']} actions, seed {summary['seed']}",
    ]
    rows = [
        ("hearts per agent (heart.get)", summary["heart.get"]),
        ("reward per agent", summary["reward"]),
        ("episode length", summary["episode_length"]),
    ]
    if "npc" in summary:  # game.policy_agents_pct < 1: the rows above are the policy's agents
        rows[2:2] = [("NPC hearts per agent", summary["npc"]["agent_stats"].get("heart.get")),
                     ("NPC reward per agent", summary["npc"]["reward"])]
    for label, stats in rows:
        if stats is None:
            lines.append(f"{label:<30} not reported by the engine")
            continue
        lines.append(
            f"{label:<30} mean {stats['mean']:9.3f}  std {stats['std']:8.3f}  "
            f"min {stats['min']:9.3f}  max {stats['max']:9.3f}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# --suite


def eval_suite(args: argparse.Namespace) -> int:
    uris = [args.uri, *args.args]
    overrides = [u for u in uris if "=" in u and not Path(u).exists()]
    if overrides:
        raise UsageError(f"--suite plays each simulation's own game; overrides such as "
                         f"{overrides[0]!r} are not accepted (write a suite file with them instead)")
    if args.num_envs is not None:
        raise UsageError("--num-envs does not apply with --suite: every episode of a simulation "
                         "is an env of its own; use --episodes")
    suite = select(load_suite(args.suite), args.simulation)  # unknown names: exit 2 here
    try:
        policies = [policy_from_uri(uri) for uri in uris]
    except CheckpointError as e:
        raise UsageError(str(e)) from None

    def progress(label: str, key: str, result: Result) -> None:
        print(f"{label}  {key}  {cell(result.summary)}  ({result.wall_s:.1f} s)", file=sys.stderr)

    replays = replay_request(args)
    try:
        card = evaluate_suite(policies, suite, episodes=args.episodes, device=args.device,
                              seed=args.seed, greedy=args.greedy, progress=progress, replays=replays)
    except ValueError as e:  # a policy that cannot play a game of the suite says why
        raise UsageError(str(e)) from None
    except OSError as e:  # a replay that could not be written: one line naming it, exit 4
        print(f"heartgrid eval: error: {file_fault(e, 'choose another --replays directory, or free space')}",
              file=sys.stderr)
        return EXIT_FILE_FAULT
    print(format_scorecard(card))
    print_replays(replays)
    data = card.to_json()
    try:
        save_scorecard(args, card, data)
    except OSError as e:  # disk full, read-only: one line naming the file, exit 4
        print(f"heartgrid eval: error: {file_fault(e, 'choose another --out or --stats-db path, or free space')}", file=sys.stderr)
        return EXIT_FILE_FAULT
    if args.json:
        print(json.dumps(data, sort_keys=True))
    return 0


def save_scorecard(args: argparse.Namespace, card: Scorecard, data: dict[str, Any]) -> None:
    """--out: the JSON file; --stats-db: a shard of this evaluation, merged into the database."""
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"scorecard: {args.out}")
    if args.stats_db is None:
        return
    shard = write_shard(args.stats_db, card)
    try:
        merged = merge_shards(args.stats_db)
    except StatsDbError as e:
        raise UsageError(f"{e}\nthis evaluation's rows are kept in {shard}; they are merged by "
                         f"the next `heartgrid stats {args.stats_db} ...` once the database is fixed") from None
    retracted = (f"; {merged.retracted} episode(s) of evaluations retracted by a resumed or restarted run removed"
                 if merged.retracted else "")
    written = counted(sum(len(r.episodes) for r in card.results), "episode", "episodes")
    print(f"stats: {written} written to "
          f"{args.stats_db} ({merged.shards} shard(s) merged{retracted})")
