"""`heartgrid regress`: are new runs of a config a regression against a stored baseline?

Three checks, each of which can fail the command (exit 1):
1. config: every new run's resolved config equals the baseline's beyond run identity (run name,
   directories, seed, recipe label) — the dehydration regressions were config changes nobody saw;
2. metrics: every metric that all baseline runs logged is logged by every new run — the
   investigation also lost `overview/reward` without noticing;
3. statistics: no guarded metric is significantly worse (one-sided test, Holm-adjusted over the
   guarded metrics, so a healthy change fails this check at most alpha of the time);
4. scores, when the baseline has eval-suite scores and the new runs bring theirs: no
   simulation's score, nor the overall score, is significantly worse, and no simulation of the
   baseline is missing. The score tests join the guarded metrics' Holm family, so checks 3 and
   4 together still fail a healthy change at most alpha of the time.
New runs of the baseline's seeds are paired with the baseline's runs by seed (`pairing`, as in
`compare`), and the tests run on the per-seed differences.
`allow_config` lists config paths (or path prefixes) whose differences were intended; the
statistics then say whether the intended change hurt.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from heartgrid.compare.baseline import Baseline
from heartgrid.compare.comparison import Comparison, compare_runs, metric_hint
from heartgrid.compare.metric_spec import MetricSpec
from heartgrid.compare.pairing import PairingMode
from heartgrid.compare.report import Check, fmt, fmt_p, format_text
from heartgrid.compare.runs import CompareError, RunSet
from heartgrid.compare.scores import OVERALL, ScoreComparison, ScoreTable, compare_score_tables
from heartgrid.compare.stats import INSUFFICIENT, WORSE, MetricTest, TestName, adjust_family
from heartgrid.config.diff import RUN_IDENTITY_PATHS, diff_configs

MIN_NEW_RUNS = 2


@dataclass(frozen=True)
class RegressionResult:
    baseline: Baseline
    comparison: Comparison
    checks: list[Check]
    scores: ScoreComparison | None = None

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


def _allowed(path: str, allow: list[str]) -> bool:
    return any(path == a or path.startswith(a + ".") for a in allow)


def config_check(baseline: Baseline, runs: RunSet, allow: list[str]) -> Check:
    # path -> (baseline value, new value) -> the new runs with that difference
    found: dict[str, dict[str, list[str]]] = {}
    for run in runs.runs:
        for path, base, new in diff_configs(baseline.config, run.config, ignore=RUN_IDENTITY_PATHS):
            if _allowed(path, allow):
                continue
            change = f"{base!r} -> {new!r}"
            found.setdefault(path, {}).setdefault(change, []).append(run.label)
    details = [
        f"{path}: baseline {change} in run(s) {', '.join(labels)}"
        for path, changes in sorted(found.items())
        for change, labels in changes.items()
    ]
    name = "config equals the baseline's beyond run identity"
    if allow:
        name += f" (allowed to differ: {', '.join(allow)})"
    return Check(name, passed=not details, details=details)


def metric_names_check(baseline: Baseline, runs: RunSet) -> Check:
    names = runs.metric_names()
    details = []
    for metric in baseline.metric_names:
        missing = [label for label, logged in names.items() if metric not in logged]
        if missing:
            details.append(f"{metric}: not logged by run(s) {', '.join(missing)}")
    return Check(
        f"every metric of the baseline is logged ({len(baseline.metric_names)} metrics)",
        passed=not details,
        details=details,
    )


def _test_line(label: str, t: MetricTest, untested: str) -> str:
    if t.verdict == INSUFFICIENT:
        return f"{label}: not tested ({untested})"
    return (f"{label}: baseline {fmt(t.reference.mean)} -> new {fmt(t.candidate.mean)}, "
            f"p(Holm) {fmt_p(t.p_adjusted)}: {t.verdict}")


def _test_description(test_name: str, paired: bool, alpha: float, family: int) -> str:
    on = " on the per-seed differences" if paired else ""
    return f"one-sided {test_name}{on}, alpha {alpha}, Holm over {family}"


def statistics_check(comparison: Comparison) -> Check:
    tests = [(result.spec.label, result.test) for result in comparison.metrics.values()]
    details = [_test_line(label, t, f"logged by {t.candidate.n} new run(s)") for label, t in tests]
    family = max((t.family for _, t in tests), default=len(tests))
    return Check(
        "no guarded metric is significantly worse "
        f"({_test_description(comparison.test_name, comparison.pairing.paired, comparison.alpha, family)})",
        passed=not any(t.verdict == WORSE for _, t in tests),
        details=details,
    )


def scores_check(scores: ScoreComparison, alpha: float) -> Check:
    tests = scores.tests()
    details = [scores.pairing.describe()]
    details += [_test_line(f"score {name}", t, "fewer than 2 seeds a side") for name, t in tests.items()]
    details += [f"score {name}: not scored by the new runs" for name in scores.missing]
    worse = any(t.verdict == WORSE for t in tests.values())
    return Check(
        "no eval-suite score is significantly worse and every simulation of the baseline is scored "
        f"({_test_description(scores.overall.test, scores.pairing.paired, alpha, scores.overall.family)})",
        passed=not worse and not scores.missing,
        details=details,
    )


def _joint_family(comparison: Comparison, scores: ScoreComparison, alpha: float) -> ScoreComparison:
    """Holm over the guarded metrics and the score tests together: one family, one alpha.
    Updates the comparison's metrics in place; returns the scores with their new adjustment."""
    family: dict[tuple[str, str], MetricTest] = {("metric", k): r.test for k, r in comparison.metrics.items()}
    family |= {("score", k): t for k, t in scores.tests().items()}
    adjusted = adjust_family(family, alpha=alpha)
    for key, result in comparison.metrics.items():
        comparison.metrics[key] = replace(result, test=adjusted[("metric", key)])
    simulations = {name: adjusted[("score", name)] for name in scores.simulations}
    return replace(scores, overall=adjusted[("score", OVERALL)], simulations=simulations)


def regress(
    baseline: Baseline,
    run_dirs: list[str],
    *,
    specs: list[MetricSpec] | None = None,
    test: TestName = "welch",
    pairing: PairingMode = "auto",
    alpha: float = 0.05,
    allow_config: list[str] | None = None,
    scores: ScoreTable | None = None,
) -> RegressionResult:
    """Check new runs against a baseline; `scores` are the new runs' eval-suite scores by
    (simulation, training seed), compared when the baseline has scores too."""
    runs = RunSet.load(run_dirs)
    if len(runs.runs) < MIN_NEW_RUNS:
        raise CompareError(
            f"regress needs at least {MIN_NEW_RUNS} new runs (seeds) for its statistical test; "
            f"got {len(runs.runs)}"
        )
    specs = specs or baseline.guarded
    for spec in specs:
        if spec.name not in baseline.metric_names:
            raise CompareError(
                f"baseline {baseline.name!r} has no metric {spec.name!r} logged by all its runs; "
                f"{metric_hint(spec.name, set(baseline.metric_names))}"
            )
    comparison = compare_runs(
        baseline.runset(),
        runs,
        specs,
        reference_label="baseline",
        candidate_label="new",
        reference_description=(
            f"{baseline.name} (recipe {baseline.config.get('recipe', '?')}, saved {baseline.info['created']})"
        ),
        test=test,
        pairing=pairing,
        alternative="worse",
        alpha=alpha,
    )
    score_result = None
    if baseline.scores and scores:
        score_result = compare_score_tables(
            baseline.scores, scores, test=test, pairing=pairing, alternative="worse", alpha=alpha,
            higher_is_better=baseline.scores_higher_is_better,
        )
        score_result = _joint_family(comparison, score_result, alpha)
        comparison.notes.extend(score_result.notes)
    elif baseline.scores:
        comparison.notes.append(f"baseline {baseline.name} has eval-suite scores; no scores of the new runs "
                                "were given, so scores were not compared")
    elif scores:
        comparison.notes.append(f"baseline {baseline.name} has no eval-suite scores; the new runs' scores "
                                "were not compared")
    checks = [
        config_check(baseline, runs, allow_config or []),
        metric_names_check(baseline, runs),
        statistics_check(comparison),
    ]
    if score_result is not None:
        checks.append(scores_check(score_result, alpha))
    return RegressionResult(baseline, comparison, checks, score_result)


def format_result(result: RegressionResult) -> str:
    failed = [c for c in result.checks if not c.passed]
    verdict = (
        f"REGRESSION: {len(failed)} of {len(result.checks)} checks failed"
        if failed
        else "OK: no regression detected"
    )
    return f"{format_text(result.comparison, result.checks)}\n\n{verdict}"
