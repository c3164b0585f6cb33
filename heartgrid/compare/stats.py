"""Two-sample statistics for comparing runs: bootstrap intervals, tests, effect sizes, verdicts.

The samples are one number per run (a seed), so they are small (3-10) and of unknown shape.
Decisions, stated in every report:
- Intervals: percentile bootstrap of the mean (10,000 resamples, seeded, so a report is
  reproducible). With fewer than ~10 runs a percentile bootstrap is narrower than the truth;
  the verdict therefore comes from the test, never from whether intervals overlap.
- Tests: Welch's t-test (the default: it does not assume equal variances and, unlike a rank
  test, can reach p < 0.05 with 3 runs a side) or the Mann-Whitney U test (no normality
  assumption, but with 3 runs a side its smallest two-sided p-value is 0.1).
- Effect size, candidate relative to reference: Hedges' g (the standardised mean difference
  with the small-sample correction) with Welch; Cliff's delta (P(c > r) - P(c < r)) with
  Mann-Whitney.
- Several metrics in one report are a family: p-values are Holm-adjusted so that the chance
  of any false "better"/"worse" across the report stays at most alpha.
- Verdict: adjusted p < alpha, then "better" or "worse" by the sign of the mean difference and
  the metric's direction; otherwise "no detectable difference" (at that number of runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special
from scipy import stats as scipy_stats

TestName = Literal["welch", "mannwhitney"]
Alternative = Literal["two-sided", "worse"]

TESTS: dict[str, str] = {
    "welch": "Welch's t-test",
    "mannwhitney": "Mann-Whitney U test",
}
EFFECT_SIZES: dict[str, str] = {
    "welch": "Hedges' g",
    "mannwhitney": "Cliff's delta",
}

BETTER = "better"
WORSE = "worse"
NO_DIFFERENCE = "no detectable difference"
NOT_WORSE = "not detectably worse"
INSUFFICIENT = "insufficient runs"

BOOTSTRAP_RESAMPLES = 10_000
BAND_RESAMPLES = 2_000


@dataclass(frozen=True)
class SampleSummary:
    n: int
    mean: float
    std: float
    """Sample standard deviation (ddof=1); 0 for a single run."""
    ci_low: float
    ci_high: float


def _bootstrap_means(samples: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `resamples` bootstrap resamples of the rows of `samples` ([n] or [n, G]).

    A resample is a multinomial count of how often each run is drawn, so all resampled means
    are one matrix product: counts [B, n] @ samples [n, ...] / n.
    """
    n = samples.shape[0]
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    return counts @ samples / n


def bootstrap_mean_ci(
    values: np.ndarray, *, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan
    means = _bootstrap_means(values, resamples, np.random.default_rng(seed))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_difference_ci(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(candidate) - mean(reference), sides resampled apart."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.size == 0 or candidate.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    differences = _bootstrap_means(candidate, resamples, rng) - _bootstrap_means(reference, resamples, rng)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(differences, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_band(
    curves: np.ndarray, *, confidence: float = 0.95, resamples: int = BAND_RESAMPLES, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise percentile bootstrap interval of the mean curve; curves is [runs, grid]."""
    means = _bootstrap_means(np.asarray(curves, dtype=np.float64), resamples, np.random.default_rng(seed))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
    return low, high


def summarize(
    values: np.ndarray, *, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> SampleSummary:
    values = np.asarray(values, dtype=np.float64)
    n = int(values.size)
    mean = float(values.mean()) if n else math.nan
    std = float(values.std(ddof=1)) if n > 1 else 0.0
    low, high = bootstrap_mean_ci(values, confidence=confidence, resamples=resamples, seed=seed)
    return SampleSummary(n=n, mean=mean, std=std, ci_low=low, ci_high=high)


def hedges_g(reference: np.ndarray, candidate: np.ndarray) -> float:
    """(mean(c) - mean(r)) / pooled sd, times the small-sample correction J = 1 - 3/(4(n_r+n_c)-9).

    Two constant samples give 0 when equal and +-inf when not (perfectly separated).
    """
    r, c = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    n_r, n_c = r.size, c.size
    if n_r < 2 or n_c < 2:
        return math.nan
    difference = c.mean() - r.mean()
    pooled_var = ((n_r - 1) * r.var(ddof=1) + (n_c - 1) * c.var(ddof=1)) / (n_r + n_c - 2)
    if pooled_var == 0.0:
        return 0.0 if difference == 0.0 else math.copysign(math.inf, difference)
    correction = 1.0 - 3.0 / (4.0 * (n_r + n_c) - 9.0)
    return float(difference / math.sqrt(pooled_var) * correction)


def cliffs_delta(reference: np.ndarray, candidate: np.ndarray) -> float:
    """P(c > r) - P(c < r) over all pairs: -1 (every candidate run below) to 1 (every one above)."""
    r, c = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if r.size == 0 or c.size == 0:
        return math.nan
    signs = np.sign(c[:, None] - r[None, :])
    return float(signs.mean())


def welch_t(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """Welch's t statistic of mean(candidate) - mean(reference) and its degrees of freedom
    (Welch-Satterthwaite); the variances are not assumed equal."""
    se2_r = reference.var(ddof=1) / reference.size
    se2_c = candidate.var(ddof=1) / candidate.size
    t = (candidate.mean() - reference.mean()) / math.sqrt(se2_r + se2_c)
    df = (se2_r + se2_c) ** 2 / (se2_r**2 / (reference.size - 1) + se2_c**2 / (candidate.size - 1))
    return float(t), float(df)


def p_value(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    test: TestName = "welch",
    alternative: Alternative = "two-sided",
    higher_is_better: bool = True,
) -> float:
    """p-value of the test; `worse` is the one-sided alternative "candidate is worse"."""
    r, c = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if r.size < 2 or c.size < 2:
        return math.nan
    # The alternative hypothesis as a direction of mean(c) - mean(r): 0 both ways, -1 below.
    if alternative == "two-sided":
        direction = 0
    else:
        direction = -1 if higher_is_better else 1
    if np.all(np.concatenate([r, c]) == r[0]):
        return 1.0  # every run has the same value: nothing to detect
    if test == "welch":
        if r.var() == 0.0 and c.var() == 0.0:
            # Two constant, different samples: the t statistic is infinite; the difference is
            # exact, so the p-value is 0 when it points the way the alternative does.
            sign = 1 if c.mean() > r.mean() else -1
            return 0.0 if direction in (0, sign) else 1.0
        t, df = welch_t(r, c)
        if direction == 0:
            return float(2.0 * special.stdtr(df, -abs(t)))  # stdtr is Student's t CDF
        # P(T <= t) for "below" (direction -1), P(T >= t) = P(T <= -t) for "above".
        return float(special.stdtr(df, -direction * t))
    if test == "mannwhitney":
        scipy_alternative = {0: "two-sided", -1: "less", 1: "greater"}[direction]
        return float(scipy_stats.mannwhitneyu(c, r, alternative=scipy_alternative, method="auto").pvalue)
    raise ValueError(f"unknown test {test!r}; choose one of {sorted(TESTS)}")


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN entries are left out of the family and kept NaN)."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(indexed)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))  # step-down: never smaller than before
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class MetricTest:
    """The statistics of one metric: reference vs candidate."""

    reference: SampleSummary
    candidate: SampleSummary
    difference: float
    """mean(candidate) - mean(reference)."""
    difference_ci: tuple[float, float]
    effect_size: float
    effect_size_name: str
    test: str
    alternative: Alternative
    p_value: float
    p_adjusted: float
    verdict: str


def verdict(
    p_adjusted: float, difference: float, *, higher_is_better: bool, alternative: Alternative, alpha: float
) -> str:
    if math.isnan(p_adjusted):
        return INSUFFICIENT
    if p_adjusted >= alpha:
        return NO_DIFFERENCE if alternative == "two-sided" else NOT_WORSE
    improved = difference > 0 if higher_is_better else difference < 0
    return BETTER if improved else WORSE


def compare_samples(
    samples: dict[str, tuple[np.ndarray, np.ndarray, bool]],
    *,
    test: TestName = "welch",
    alternative: Alternative = "two-sided",
    alpha: float = 0.05,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, MetricTest]:
    """Test every metric of a family: {key: (reference values, candidate values, higher_is_better)}."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; choose one of {sorted(TESTS)}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    keys = list(samples)
    raw = [
        p_value(r, c, test=test, alternative=alternative, higher_is_better=higher)
        for r, c, higher in samples.values()
    ]
    adjusted = holm(raw)
    results: dict[str, MetricTest] = {}
    for key, p, p_adj in zip(keys, raw, adjusted):
        reference, candidate, higher = samples[key]
        ref = summarize(reference, confidence=confidence, resamples=resamples, seed=seed)
        cand = summarize(candidate, confidence=confidence, resamples=resamples, seed=seed)
        difference = cand.mean - ref.mean
        effect = hedges_g(reference, candidate) if test == "welch" else cliffs_delta(reference, candidate)
        results[key] = MetricTest(
            reference=ref,
            candidate=cand,
            difference=difference,
            difference_ci=bootstrap_difference_ci(
                reference, candidate, confidence=confidence, resamples=resamples, seed=seed
            ),
            effect_size=effect,
            effect_size_name=EFFECT_SIZES[test],
            test=TESTS[test],
            alternative=alternative,
            p_value=p,
            p_adjusted=p_adj,
            verdict=verdict(p_adj, difference, higher_is_better=higher, alternative=alternative, alpha=alpha),
        )
    return results
