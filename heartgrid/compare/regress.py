"""`heartgrid regress`: are new runs of a config a regression against a stored baseline?

Three checks, each of which can fail the command (exit 1):
1. config: every new run's resolved config equals the baseline's beyond run identity (run name,
   directories, seed, recipe label) — the dehydration regressions were config changes nobody saw;
2. metrics: every metric that all baseline runs logged is logged by every new run — the
   investigation also lost `overview/reward` without noticing;
3. statistics: no guarded metric is significantly worse (one-sided test, Holm-adjusted over the
   guarded metrics, so a healthy change fails this check at most alpha of the time).
`allow_config` lists config paths (or path prefixes) whose differences were intended; the
statistics then say whether the intended change hurt.
"""

from __future__ import annotations

from dataclasses import dataclass

from heartgrid.compare.baseline import Baseline
from heartgrid.compare.comparison import Comparison, compare_runs, metric_hint
from heartgrid.compare.metric_spec import MetricSpec
from heartgrid.compare.report import Check, fmt, fmt_p, format_text
from heartgrid.compare.runs import CompareError, RunSet
from heartgrid.compare.stats import INSUFFICIENT, WORSE, TestName
from heartgrid.config.diff import RUN_IDENTITY_PATHS, diff_configs

MIN_NEW_RUNS = 2


@dataclass(frozen=True)
class RegressionResult:
    baseline: Baseline
    comparison: Comparison
    checks: list[Check]

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


def statistics_check(comparison: Comparison) -> Check:
    details = []
    worse = False
    for result in comparison.metrics.values():
        t = result.test
        if t.verdict == INSUFFICIENT:
            details.append(f"{result.spec.label}: not tested (logged by {t.candidate.n} new run(s))")
            continue
        worse |= t.verdict == WORSE
        details.append(
            f"{result.spec.label}: baseline {fmt(t.reference.mean)} -> new {fmt(t.candidate.mean)}, "
            f"p(Holm) {fmt_p(t.p_adjusted)}: {t.verdict}"
        )
    return Check(
        f"no guarded metric is significantly worse (one-sided {comparison.test_name}, alpha {comparison.alpha}, "
        f"Holm over {len(comparison.metrics)})",
        passed=not worse,
        details=details,
    )


def regress(
    baseline: Baseline,
    run_dirs: list[str],
    *,
    specs: list[MetricSpec] | None = None,
    test: TestName = "welch",
    alpha: float = 0.05,
    allow_config: list[str] | None = None,
) -> RegressionResult:
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
        alternative="worse",
        alpha=alpha,
    )
    checks = [
        config_check(baseline, runs, allow_config or []),
        metric_names_check(baseline, runs),
        statistics_check(comparison),
    ]
    return RegressionResult(baseline, comparison, checks)


def format_result(result: RegressionResult) -> str:
    failed = [c for c in result.checks if not c.passed]
    verdict = (
        f"REGRESSION: {len(failed)} of {len(result.checks)} checks failed"
        if failed
        else "OK: no regression detected"
    )
    return f"{format_text(result.comparison, result.checks)}\n\n{verdict}"
