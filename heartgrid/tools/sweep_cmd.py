"""`heartgrid sweep RECIPE ... --name NAME --param KEY=DIST:ARGS ... --trials N` and `sweep show NAME`.

Exit codes: 0 the sweep has its N finished trials (or the places left are run by other
workers); 1 a worker stopped after trials kept failing; 2 bad input (an unknown key or
distribution, low > high, a metric the runs do not log, a sweep of that name with other
settings); 3 stopped by Ctrl-C or a stop signal, every running trial saved (the same command
resumes); 130 aborted by a second interrupt.
"""

from __future__ import annotations

import argparse
from typing import Any

from heartgrid.errors import UsageError

EXAMPLE = """examples:
  heartgrid sweep small_cardinal --name lr --trials 12 --steps 200000 \\
      --param trainer.optimizer.learning_rate=log:1e-4:3e-3 --param trainer.ent_coef=uniform:0:0.02 \\
      --metric env_agent/heart.get
  heartgrid sweep --file sweep.yaml --name lr --workers 2
  heartgrid sweep --name lr --storage postgresql://host/db      (join a sweep from another machine)
  heartgrid sweep show lr

distributions: log:LOW:HIGH, uniform:LOW:HIGH, int:LOW:HIGH[:STEP], logint:LOW:HIGH, choice:A,B,...
more: docs/sweeps.md"""

# The options that define or budget a sweep; `show` takes none of them.
SPEC_OPTIONS = ("metric", "direction", "trials", "steps", "cost", "pruner", "sampler", "seed")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="search hyperparameters with Optuna; each trial is a `heartgrid train` run",
        description="Run a sweep (RECIPE and overrides, then options) or report one (show NAME). "
        "Each trial trains runs/sweeps/NAME/runs/NAME-tNNN; the same command continues a stopped sweep.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("words", nargs="*", metavar="RECIPE [key=value ...] | show NAME")
    p.add_argument("--name", help="the sweep's name: its files go to runs/sweeps/NAME")
    p.add_argument("--file", help="a YAML or JSON sweep definition; options given here replace its values")
    p.add_argument("--param", action="append", metavar="KEY=DIST:ARGS", help="a searched parameter, repeatable")
    p.add_argument("--metric", help="the objective, [final:|late:|auc:]NAME; a bare NAME is late: "
                   "(default late:env_agent/heart.get)")
    p.add_argument("--direction", choices=("maximize", "minimize"), help="(default maximize)")
    p.add_argument("--trials", type=_count, help="trials in all, across workers and restarts")
    p.add_argument("--steps", type=_count, help="trainer.total_timesteps of every trial (default: the recipe's)")
    p.add_argument("--cost", choices=("steps", "time"), help="a second objective, minimized: a Pareto front "
                   "of score against agent steps or training seconds (no pruning)")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), help="(default median)")
    p.add_argument("--sampler", choices=("tpe", "random"), help="(default tpe)")
    p.add_argument("--seed", type=int, help="seed of the sampler (default: unseeded)")
    p.add_argument("--storage", metavar="URL", help="a database URL shared by workers on several machines "
                   "(default: the journal file runs/sweeps/NAME/journal.log)")
    p.add_argument("--workers", type=_count, default=1, help="trials at once in this process (default 1)")
    p.add_argument("--dir", help="the folder of sweeps (default runs/sweeps)")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.words[:1] == ["show"]:
        return cmd_show(args)
    return cmd_run(args)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The sweep settings given on the command line (absent: not given)."""
    given: dict[str, Any] = {key: getattr(args, key) for key in SPEC_OPTIONS if getattr(args, key) is not None}
    if args.words:
        given["recipe"], given["overrides"] = args.words[0], args.words[1:]
    if args.param:
        params: dict[str, str] = {}
        for item in args.param:
            key, eq, dist = item.partition("=")
            if not eq:
                raise UsageError(f"--param {item}: not of the form KEY=DIST:ARGS; write e.g. "
                                 "trainer.optimizer.learning_rate=log:1e-4:3e-3")
            if key.strip() in params:
                raise UsageError(f"--param {key.strip()} is given twice; give each key once")
            params[key.strip()] = dist
        given["params"] = params
    return given


def cmd_run(args: argparse.Namespace) -> int:
    from heartgrid.sweep.spec import make_spec, read_spec_file, resolve, sweep_name
    from heartgrid.sweep.store import BUDGET_ATTR, SweepDir, load_study, stored_spec

    file_data = read_spec_file(args.file) if args.file else {}
    name = sweep_name(args.name, file_data)
    where = SweepDir.of(args.dir, name)
    url = args.storage or where.remembered_storage()
    given = given_options(args)
    budget = given.get("trials") or file_data.get("trials")
    if not args.words and not args.file and not args.param:
        # Joining a sweep: its definition and budget come from the study.
        study = load_study(name, where, url)
        spec = make_spec(stored_spec(study).model_dump(), given, f"the study of sweep {name} and the command line")
        budget = budget or study.user_attrs.get(BUDGET_ATTR)
    else:
        spec = make_spec(file_data, given, f"--file {args.file} and the command line" if args.file else "the command line")
    if budget is None:
        raise UsageError("how many trials? add --trials N (in all, across workers and restarts)")
    sweep = resolve(name, spec)
    where.remember_storage(url)
    return run_sweep(sweep, where, url, budget, args.workers)


def run_sweep(sweep: Any, where: Any, url: str | None, budget: int, workers: int) -> int:
    from heartgrid.interrupts import DEFAULT_STOP_SIGNALS, EXIT_STOPPED
    from heartgrid.sweep.show import summary_lines
    from heartgrid.sweep.store import DEFAULT_DIR, create_study, open_storage
    from heartgrid.interrupts import say
    from heartgrid.sweep.worker import Workers

    spec = sweep.spec
    study = create_study(sweep, open_storage(url, where), budget)  # refuses another sweep's name here
    before = study.get_trials(deepcopy=False)
    finished = sum(t.state.is_finished() and "superseded" not in t.user_attrs for t in before)
    again = f" (continuing: {finished} finished)" if before else ""
    pruning = "none (a sweep with --cost cannot prune)" if sweep.multi_objective else spec.pruner
    shortest, longest = sweep.step_range
    steps = f"{shortest:,}" if shortest == longest else f"{shortest:,} to {longest:,} (searched)"
    trials = f"{budget} trial{'s' if budget != 1 else ''}"
    say(f"sweep {sweep.name}: {trials} of {spec.recipe}, {steps} agent steps each, {workers} at a time here{again}")
    say(f"  objective {sweep.objective.describe()}" + (f"; cost: {spec.cost}, minimized" if spec.cost else ""))
    say(f"  params: {', '.join(f'{p.key}={p.text}' for p in sweep.params)}; sampler {spec.sampler}, pruner {pruning}")
    say(f"  study: {url or where.journal}; runs: {where.runs}")
    team = Workers(sweep, where, url, budget, count=workers)
    team.stop.listeners.append(lambda reason: reason.startswith("SIG") and say(
        f"heartgrid sweep: {reason}: stopping; each running trial saves its checkpoint "
        "(once more to abort them unsaved)", err=True))
    with team.stop.on_signals(DEFAULT_STOP_SIGNALS):
        team.run()
    if team.errors:
        raise team.errors[0]
    say("")
    for line in summary_lines(study, spec):
        say(line)
    if team.stop.requested:
        say(f"heartgrid sweep: stopped by {team.stop.reason}; the same command resumes the sweep", err=True)
        return EXIT_STOPPED
    if team.failed_out:
        return 1
    say(f"the table, importances and plots: heartgrid sweep show {sweep.name}"
        + (f" --dir {where.root.parent}" if where.root.parent != DEFAULT_DIR else ""))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rich.console import Console

    from heartgrid.sweep.plots import write_plots
    from heartgrid.sweep.show import importance_lines, summary_lines, trials_table
    from heartgrid.sweep.store import SweepDir, load_study, quiet_optuna, stored_spec

    extra = [f"--{key}" for key in (*SPEC_OPTIONS, "param", "file", "name") if getattr(args, key) is not None]
    if len(args.words) != 2 or extra:
        raise UsageError("write: heartgrid sweep show NAME [--storage URL] [--dir DIR]"
                         + (f" (without {', '.join(extra)})" if extra else ""))
    name = args.words[1]
    where = SweepDir.of(args.dir, name)
    study = load_study(name, where, args.storage)
    quiet_optuna(errors_only=True)
    spec = stored_spec(study)
    # Wide enough for the parameter columns whatever the terminal (or a pipe) says.
    Console(width=max(Console().width, 160)).print(trials_table(study, spec))
    for line in [*summary_lines(study, spec), *importance_lines(study)]:
        print(line)
    written, skipped = write_plots(study, where.root, spec.metric, spec.cost)
    for path in written:
        print(f"plot: {path}")
    for line in skipped:
        print(f"plot {line}")
    return 0
