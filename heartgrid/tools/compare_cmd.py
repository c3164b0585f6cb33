"""Verbs that compare runs: `ab`, `compare`, `baseline save|list|show`, `regress`.

Exit codes: 0 done (for `regress`: no regression), 1 `regress` found a regression or a training
run of `ab` failed, 2 bad input (unknown recipe or key, not a run directory, unknown baseline,
an `--out` in use or holding another A/B), 3 `ab` stopped by a signal with every run saved (the
same command resumes), 130 `ab` aborted by a second interrupt.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from heartgrid.compare.metric_spec import DEFAULT_METRICS, MetricSpecError, parse_metrics

if TYPE_CHECKING:
    from heartgrid.compare.ab import TrainJob
    from heartgrid.compare.comparison import Comparison

# The statistics, DuckDB and matplotlib are imported by the handlers, not here: every
# `heartgrid` command builds this parser, and training should not wait for them.
TEST_CHOICES = ("welch", "mannwhitney")  # heartgrid.compare.stats.TESTS
PAIRING_CHOICES = ("auto", "paired", "unpaired")  # heartgrid.compare.pairing.PAIRING_MODES

Handler = Callable[[argparse.Namespace], int]


def _alpha(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"alpha must be between 0 and 1, got {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _add_statistics(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--metric", action="append", metavar="SPEC",
        help="[final:|late:|auc:]NAME[:higher|:lower], repeatable (default: " + ", ".join(DEFAULT_METRICS) + ")",
    )
    p.add_argument("--test", choices=TEST_CHOICES, default="welch",
                   help="two-sample test (default welch); on runs paired by seed its paired counterpart "
                   "runs: welch -> paired t-test, mannwhitney -> Wilcoxon signed-rank test")
    p.add_argument("--pairing", choices=PAIRING_CHOICES, default="auto",
                   help="pair runs of the two sides by seed (system.seed): auto (default) pairs when both "
                   "sides ran the same seeds; paired pairs the seeds both ran; unpaired never pairs")
    p.add_argument("--alpha", type=_alpha, default=0.05, help="significance level (default 0.05)")


def _add_suite_scores(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--suite", help=help)
    p.add_argument("--suite-episodes", type=_positive, help="episodes per simulation (default: each simulation's own)")
    p.add_argument("--suite-device", default="auto", help="device for the suite evaluation (default auto)")


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store", help="baseline store directory (default $HEARTGRID_BASELINES or ~/.heartgrid/baselines)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ab", help="train seeds of two recipes and compare them statistically",
        description="Each side is a recipe with its overrides, quoted: "
        "heartgrid ab small_easy_shaped \"small_easy_shaped trainer.value_target=refreshed\" --seeds 4",
    )
    p.add_argument("a", help="reference side: \"RECIPE [key=value ...]\"")
    p.add_argument("b", help="candidate side: \"RECIPE [key=value ...]\"")
    p.add_argument("--seeds", type=int, required=True, help="runs per side (seeds 0..N-1), at least 2")
    p.add_argument("--steps", type=_positive, help="trainer.total_timesteps of every run (default: the recipe's)")
    p.add_argument("--jobs", type=_positive, help="training processes at once (default: one per core)")
    p.add_argument("--device", help="system.device of every run (default: the recipe resolution's, auto)")
    p.add_argument("--out", help="report directory; runs go to OUT/runs (default runs/ab-<time>)")
    _add_statistics(p)
    p.set_defaults(func=_guard(cmd_ab))

    p = sub.add_parser(
        "compare", help="compare existing runs statistically: RUN_DIR ... --vs RUN_DIR ...",
        description="The --vs runs are the reference; verdicts say how the first runs compare to them.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--vs", nargs="+", required=True, metavar="RUN_DIR", help="reference runs")
    p.add_argument("--out", help="report directory (default runs/compare-<time>)")
    _add_statistics(p)
    p.set_defaults(func=_guard(cmd_compare))

    p = sub.add_parser("baseline", help="store baselines for `heartgrid regress`: save, list, show")
    verbs = p.add_subparsers(dest="baseline_command", metavar="ACTION")
    verbs.required = True
    s = verbs.add_parser("save", help="store runs (2+ seeds of one config) as a named baseline")
    s.add_argument("name")
    s.add_argument("runs", nargs="+", metavar="RUN_DIR")
    s.add_argument("--metric", action="append", metavar="SPEC",
                   help="guarded metric, repeatable (default: " + ", ".join(DEFAULT_METRICS) + ")")
    s.add_argument("--force", action="store_true", help="replace an existing baseline of that name")
    _add_suite_scores(s, "also store the runs' scores on this eval suite (each run's latest checkpoint)")
    _add_store(s)
    s.set_defaults(func=_guard(cmd_baseline_save))
    s = verbs.add_parser("list", help="list the stored baselines")
    _add_store(s)
    s.set_defaults(func=_guard(cmd_baseline_list))
    s = verbs.add_parser("show", help="show a baseline: runs, guarded metrics and their statistics")
    s.add_argument("name")
    _add_store(s)
    s.set_defaults(func=_guard(cmd_baseline_show))

    p = sub.add_parser(
        "regress", help="check new runs against a baseline (exit 1 on a regression)",
        description="Fails when a new run's config differs from the baseline's beyond run identity, "
        "when a metric of the baseline is not logged, when a guarded metric is significantly worse, "
        "or, for a baseline saved with --suite, when the new runs' suite scores (same suite, seeds and "
        "maps; paired by training seed) are significantly worse.",
    )
    p.add_argument("name", help="baseline name")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--allow-config", action="append", default=[], metavar="PATH",
                   help="config path (or prefix) allowed to differ, repeatable")
    p.add_argument("--out", help="also write a report directory (JSON, PNG, HTML)")
    p.add_argument("--no-suite", action="store_true", help="skip the suite scores of a baseline saved with --suite")
    p.add_argument("--suite-device", default="auto", help="device for the suite evaluation (default auto)")
    _add_statistics(p)
    _add_store(p)
    p.set_defaults(func=_guard(cmd_regress))


def _guard(handler: Handler) -> Handler:
    """Bad input becomes a one-line error and exit status 2."""

    @functools.wraps(handler)
    def wrapped(args: argparse.Namespace) -> int:
        from heartgrid.compare.runs import CompareError

        try:
            return handler(args)
        except (CompareError, MetricSpecError) as e:
            print(f"heartgrid {args.command}: error: {e}", file=sys.stderr)
            return 2

    return wrapped


def _default_out(kind: str) -> Path:
    return Path("runs") / f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _print_report(comparison: Comparison, out: Path) -> None:
    from heartgrid.compare.report import format_text, write_report

    print(format_text(comparison))
    write_report(comparison, out)
    print(f"\nreport: {out / 'report.html'} (report.json, curves.png)")


def cmd_ab(args: argparse.Namespace) -> int:
    from heartgrid.compare.ab import (
        TrainingFailed, check_plan, default_parallel, parse_side, plan_jobs, planned_threads, run_jobs, side_config,
    )
    from heartgrid.compare.comparison import compare_runs
    from heartgrid.compare.runs import CompareError, RunSet
    from heartgrid.config.diff import RUN_IDENTITY_PATHS, diff_configs, format_diff
    from heartgrid.interrupts import DEFAULT_STOP_SIGNALS, EXIT_STOPPED, StopRequest, say
    from heartgrid.rundir.lock import RunLock, RunLockedError

    if args.seeds < 2:
        raise CompareError(f"--seeds must be at least 2 for a statistical comparison, got {args.seeds}")
    specs = parse_metrics(args.metric)
    sides = [parse_side("A", args.a), parse_side("B", args.b)]
    configs = [side_config(s, steps=args.steps, device=args.device) for s in sides]
    rows = diff_configs(configs[0], configs[1], ignore=RUN_IDENTITY_PATHS)
    if rows:
        say(f"config diff (A -> B), {len(rows)} path(s):\n" + format_diff(rows))
    else:
        say("config diff: none (beyond run identity): A and B are one config, an A/A test")

    out = Path(args.out) if args.out else _default_out("ab")
    data_dir = out / "runs"
    try:
        lock = RunLock(out, "heartgrid ab").acquire()
    except RunLockedError as e:
        raise CompareError(str(e)) from None
    try:
        plan = {"a": args.a, "b": args.b, "seeds": args.seeds, "steps": args.steps, "device": args.device}
        resuming = check_plan(out, plan)
        jobs = plan_jobs(sides, configs, args.seeds, data_dir, out / "logs", steps=args.steps, device=args.device)
        done_before = [job for job in jobs if resuming and job.finished()]
        todo = [job for job in jobs if job not in done_before]
        parallel = args.jobs or default_parallel(max(len(todo), 1))
        steps = [c.trainer.total_timesteps for c in configs]
        budget = f"{steps[0]:,} agent steps"
        if steps[0] != steps[1]:
            budget = f"{steps[0]:,} (A) / {steps[1]:,} (B) agent steps"
        again = f" (resuming: {len(done_before)} finished, {len(todo)} to train or resume)" if resuming else ""
        threads = planned_threads(out, parallel)
        how = (f"{parallel} at a time on {threads.threads} torch thread(s) each ({threads.reason}), "
               if todo else "")  # nothing left to run: no concurrency to report
        say(f"\ntraining {args.seeds} seeds of A and of B: {len(jobs)} runs of {budget}, {how}"
            f"into {data_dir}{again}")
        done = len(done_before)

        def progress(job: TrainJob, seconds: float) -> None:
            nonlocal done
            done += 1
            say(f"  [{done}/{len(jobs)}] {job.side.label} seed {job.seed} done in {seconds:.1f}s")

        stop = StopRequest()
        stop.listeners.append(lambda reason: say(
            f"heartgrid ab: {reason}: stopping; each running training saves its current epoch "
            "(once more to abort them unsaved)", err=True))
        try:
            with stop.on_signals(DEFAULT_STOP_SIGNALS):
                unfinished = run_jobs(todo, parallel=parallel, on_done=progress, stop=stop,
                                      threads=threads.threads)
        except TrainingFailed as e:
            say(f"heartgrid ab: error: {e}", err=True)
            return 1
        except KeyboardInterrupt:
            say(f"heartgrid ab: aborted; the runs trained so far are in {data_dir}", err=True)
            return 130
        if unfinished:
            say(f"heartgrid ab: stopped by {stop.reason}; {done} of {len(jobs)} runs finished, the others "
                f"saved their progress; resume with the same command and --out {out}", err=True)
            return EXIT_STOPPED
        runs = {
            side.label: RunSet.load([data_dir / j.run for j in jobs if j.side is side]) for side in sides
        }
        try:
            comparison = compare_runs(
                runs["A"], runs["B"], specs, reference_label="A", candidate_label="B",
                reference_description=args.a, candidate_description=args.b, test=args.test, alpha=args.alpha,
                pairing=args.pairing,
            )
        except CompareError as e:
            # The training is done and kept: say how to compare it again without retraining.
            raise CompareError(
                f"{e}\nthe runs are in {data_dir}; compare them with "
                f"`heartgrid compare {data_dir}/b-seed* --vs {data_dir}/a-seed* --metric ...`"
            ) from None
        say("")
        _print_report(comparison, out)  # still under the lock: the report is written into `out`
        return 0
    finally:
        lock.release()


def cmd_compare(args: argparse.Namespace) -> int:
    from heartgrid.compare.comparison import compare_runs
    from heartgrid.compare.runs import RunSet
    from heartgrid.config.diff import format_diff

    specs = parse_metrics(args.metric)
    reference, candidate = RunSet.load(args.vs), RunSet.load(args.runs)
    comparison = compare_runs(
        reference, candidate, specs, reference_label="reference", candidate_label="candidate",
        test=args.test, alpha=args.alpha, pairing=args.pairing,
    )
    rows = comparison.config_diff
    if rows:
        print(f"config diff (reference -> candidate), {len(rows)} path(s):\n" + format_diff(rows))
    else:
        print("config diff: none (beyond run identity)")
    print()
    _print_report(comparison, Path(args.out) if args.out else _default_out("compare"))
    return 0


def cmd_baseline_save(args: argparse.Namespace) -> int:
    from heartgrid.compare.baseline import describe, save_baseline

    scores = source = None
    if args.suite:
        from heartgrid.tools.suite_scores import score_runs

        scores, source = score_runs(args.runs, args.suite, episodes=args.suite_episodes, device=args.suite_device)
    baseline = save_baseline(args.name, args.runs, parse_metrics(args.metric), store=args.store, force=args.force,
                             scores=scores, scores_source=source)
    print(f"saved baseline {baseline.name}\n{describe(baseline)}")
    return 0


def cmd_baseline_list(args: argparse.Namespace) -> int:
    from heartgrid.compare.baseline import list_baselines, store_dir
    from heartgrid.compare.runs import CompareError

    root = store_dir(args.store)
    if root.exists() and not root.is_dir():
        raise CompareError(f"baseline store {root} is a file, not a directory")
    baselines, damaged = list_baselines(args.store)
    if not baselines and not damaged:
        print(f"no baselines in {root}")
    width = max((len(b.name) for b in baselines), default=0)
    for b in baselines:
        print(f"{b.name:<{width}}  {b.info['created']}  {len(b.info['runs'])} runs  "
              f"recipe {b.config.get('recipe', '?')}")
    for line in damaged:
        print(f"heartgrid {args.command}: warning: {line}", file=sys.stderr)
    return 0


def cmd_baseline_show(args: argparse.Namespace) -> int:
    from heartgrid.compare.baseline import describe, load_baseline

    print(describe(load_baseline(args.name, store=args.store)))
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    from heartgrid.compare.baseline import load_baseline
    from heartgrid.compare.regress import format_result, regress
    from heartgrid.compare.report import write_report

    baseline = load_baseline(args.name, store=args.store)
    specs = parse_metrics(args.metric) if args.metric else None
    scores = None
    source = baseline.scores_source
    if source is not None and not args.no_suite:
        # The baseline was scored on a suite: score the new runs on the same one, same maps.
        from heartgrid.tools.suite_scores import check_same_maps, score_runs

        scores, ours = score_runs(args.runs, source["suite"], episodes=source["episodes"], device=args.suite_device)
        check_same_maps(source, ours)
    result = regress(baseline, args.runs, specs=specs, test=args.test, alpha=args.alpha,
                     allow_config=args.allow_config, pairing=args.pairing, scores=scores)
    print(format_result(result))
    if args.out:
        write_report(result.comparison, args.out, result.checks, title=f"HeartGrid regress: {baseline.name}")
        print(f"report: {Path(args.out) / 'report.html'}")
    return 0 if result.passed else 1
