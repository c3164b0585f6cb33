"""Two-sample statistics for comparing runs: bootstrap intervals, tests, effect sizes, verdicts.

The samples are one number per run (a seed), so they are small (3-10) and of unknown shape.
Decisions, stated in every report:
- Intervals: percentile bootstrap of the mean (10,000 resamples, seeded, so a report is
  reproducible). With fewer than ~10 runs a percentile bootstrap is narrower than the truth;
  the verdict therefore comes from the test, never from whether intervals overlap.
- Tests on unpaired runs: Welch's t-test (the default: it does not assume equal variances and,
  unlike a rank test, can reach p < 0.05 with 3 runs a side) or the Mann-Whitney U test (no
  normality assumption, but with 3 runs a side its smallest two-sided p-value is 0.1).
- Tests on paired runs (the same seed on both sides, heartgrid.compare.pairing): the test runs on
  the per-seed differences d = candidate - reference. Welch's counterpart is the paired t-test
  (one-sample t on d, df = n - 1), Mann-Whitney's the Wilcoxon signed-rank test (exact: all
  2^n sign patterns up to WILCOXON_ENUMERATE_MAX pairs, ties by mid-ranks; zero differences
  carry no sign and are dropped, Wilcoxon's convention). With 5 pairs or fewer no outcome of
  the signed-rank test reaches a two-sided 0.05.
- Effect size, candidate relative to reference: Hedges' g (the standardised mean difference
  with the small-sample correction) with Welch; Cliff's delta (P(c > r) - P(c < r)) with
  Mann-Whitney; d_z = mean(d) / sd(d) with both paired tests, the paired test's own scale (its
  t statistic is d_z * sqrt(n)). d_z is not comparable with g: it divides by the spread of the
  differences, which shared seed noise makes small. Paired results therefore also carry Hedges' g of
  the two sides taken as unpaired samples.
- Several metrics in one report are a family: p-values are Holm-adjusted so that the chance
  of any false "better"/"worse" across the report stays at most alpha.
- Verdict: adjusted p < alpha, then "better" or "worse" by the sign of the mean difference and
  the metric's direction; otherwise "no detectable difference" (at that number of runs).
- Every result carries the smallest difference its test could detect (heartgrid.compare.power)
  at the family's first Holm level, alpha / m.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

import numpy as np
from scipy import special
from scipy import stats as scipy_stats

from heartgrid.compare.power import POWER, DetectableEffect, detectable_effect

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
# The test each unpaired test becomes when the runs are paired by seed.
PAIRED_TESTS: dict[str, str] = {
    "welch": "paired t-test",
    "mannwhitney": "Wilcoxon signed-rank test",
}
PAIRED_EFFECT_SIZE = "d_z"
WILCOXON_ENUMERATE_MAX = 16
"""Up to this many nonzero differences the signed-rank p-value enumerates every sign pattern."""

BETTER = "better"
WORSE = "worse"
NO_DIFFERENCE = "no detectable difference"
NOT_WORSE = "not detectably worse"
INSUFFICIENT = "insufficient runs"

BOOTSTRAP_RESAMPLES = 10_000
BAND_RESAMPLES = 2_000

Key = TypeVar("Key", bound=Hashable)


def label_of_test(test: TestName, paired: bool) -> str:
    """The name of the test that runs: "Welch's t-test", or "paired t-test" on pairs."""
    return (PAIRED_TESTS if paired else TESTS)[test]


def effect_size_label(test: TestName, paired: bool) -> str:
    return PAIRED_EFFECT_SIZE if paired else EFFECT_SIZES[test]


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
    """Percentile bootstrap interval of the mean; NaN (shown n/a) for fewer than 2 values."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:  # every resample of one run is that run: a zero-width interval would claim certainty
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
    """Percentile bootstrap interval of mean(candidate) - mean(reference), sides resampled apart;
    NaN when a side has fewer than 2 values."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.size < 2 or candidate.size < 2:  # see bootstrap_mean_ci
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    differences = _bootstrap_means(candidate, resamples, rng) - _bootstrap_means(reference, resamples, rng)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(differences, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_band(
    curves: np.ndarray, *, confidence: float = 0.95, resamples: int = BAND_RESAMPLES, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise percentile bootstrap interval of the mean curve; curves is [runs, grid]. NaN
    (no band drawn) for fewer than 2 runs, as bootstrap_mean_ci."""
    curves = np.asarray(curves, dtype=np.float64)
    if curves.shape[0] < 2:
        nan = np.full(curves.shape[1:], math.nan)
        return nan, nan.copy()
    means = _bootstrap_means(curves, resamples, np.random.default_rng(seed))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
    return low, high


def summarize(
    values: np.ndarray, *, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> SampleSummary:
    values = np.asarray(values, dtype=np.float64)
    n = int(values.size)
    mean = float(values.mean()) if n else math.nan
    std = float(values.std(ddof=1)) if n > 1 else math.nan  # one run has no spread to show
    low, high = bootstrap_mean_ci(values, confidence=confidence, resamples=resamples, seed=seed)
    return SampleSummary(n=n, mean=mean, std=std, ci_low=low, ci_high=high)


def pooled_sd(reference: np.ndarray, candidate: np.ndarray) -> float:
    """sqrt(((n_r - 1) s_r^2 + (n_c - 1) s_c^2) / (n_r + n_c - 2)): the common spread of two samples."""
    r, c = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if r.size < 2 or c.size < 2:
        return math.nan
    return math.sqrt(((r.size - 1) * r.var(ddof=1) + (c.size - 1) * c.var(ddof=1)) / (r.size + c.size - 2))


def hedges_g(reference: np.ndarray, candidate: np.ndarray) -> float:
    """(mean(c) - mean(r)) / pooled sd, times the small-sample correction J = 1 - 3/(4(n_r+n_c)-9).

    Two constant samples give 0 when equal and +-inf when not (perfectly separated).
    """
    r, c = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    n_r, n_c = r.size, c.size
    if n_r < 2 or n_c < 2:
        return math.nan
    difference = c.mean() - r.mean()
    sd = pooled_sd(r, c)
    if sd == 0.0:
        return 0.0 if difference == 0.0 else math.copysign(math.inf, difference)
    correction = 1.0 - 3.0 / (4.0 * (n_r + n_c) - 9.0)
    return float(difference / sd * correction)


def same_up_to_rounding(values: np.ndarray) -> bool:
    """Whether all values are equal but for float rounding. Paired runs of deterministic
    training can differ by exactly the same amount on every seed, computed in different orders;
    their spread of 1e-16 is no evidence of noise and would give a d_z of 1e14."""
    v = np.asarray(values, np.float64)
    return bool(np.ptp(v) <= 1e-12 * np.max(np.abs(v))) if v.size else True


def paired_sd(differences: np.ndarray) -> float:
    """sd(d) (ddof 1) of paired differences, 0 when they are equal but for rounding."""
    d = np.asarray(differences, np.float64)
    if d.size < 2:
        return math.nan
    return 0.0 if same_up_to_rounding(d) else float(d.std(ddof=1))


def cohens_dz(differences: np.ndarray) -> float:
    """mean(d) / sd(d) of paired differences; 0 or +-inf when every difference is the same."""
    d = np.asarray(differences, np.float64)
    if d.size < 2:
        return math.nan
    mean, sd = float(d.mean()), paired_sd(d)
    if sd == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / sd


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


def _direction(alternative: Alternative, higher_is_better: bool) -> int:
    """The alternative hypothesis as a direction of the candidate's difference: 0 both ways,
    -1 below the reference (worse when higher is better), +1 above."""
    if alternative == "two-sided":
        return 0
    return -1 if higher_is_better else 1


def _t_p_value(t: float, df: float, direction: int) -> float:
    if direction == 0:
        return float(2.0 * special.stdtr(df, -abs(t)))  # stdtr is Student's t CDF
    # P(T <= t) for "below" (direction -1), P(T >= t) = P(T <= -t) for "above".
    return float(special.stdtr(df, -direction * t))


def _exact_difference_p(difference: float, direction: int) -> float:
    """A difference without noise (constant samples): p 0 when it points the alternative's way."""
    sign = 1 if difference > 0 else -1
    return 0.0 if direction in (0, sign) else 1.0


def p_value(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    test: TestName = "welch",
    alternative: Alternative = "two-sided",
    higher_is_better: bool = True,
) -> float:
    """p-value of the unpaired test; `worse` is the one-sided alternative "candidate is worse"."""
    r, c = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if r.size < 2 or c.size < 2:
        return math.nan
    direction = _direction(alternative, higher_is_better)
    if np.all(np.concatenate([r, c]) == r[0]):
        return 1.0  # every run has the same value: nothing to detect
    if test == "welch":
        if r.var() == 0.0 and c.var() == 0.0:
            # Two constant, different samples: the t statistic is infinite.
            return _exact_difference_p(c.mean() - r.mean(), direction)
        t, df = welch_t(r, c)
        return _t_p_value(t, df, direction)
    if test == "mannwhitney":
        scipy_alternative = {0: "two-sided", -1: "less", 1: "greater"}[direction]
        return float(scipy_stats.mannwhitneyu(c, r, alternative=scipy_alternative, method="auto").pvalue)
    raise ValueError(f"unknown test {test!r}; choose one of {sorted(TESTS)}")


def signed_rank_p(differences: np.ndarray, direction: int) -> float:
    """Wilcoxon signed-rank p-value of differences (candidate - reference) in `direction`.

    T+ is the sum of the ranks of |d| (mid-ranks for ties) over the positive differences. Under
    the null each difference's sign is a fair coin, so for up to WILCOXON_ENUMERATE_MAX nonzero
    differences the p-value counts the 2^n sign patterns whose T+ is as extreme: exact, ties
    included (scipy's "exact" assumes no ties). Beyond that, scipy's own method.
    """
    d = np.asarray(differences, np.float64)
    d = d[d != 0.0]  # a zero difference has no sign to test
    n = d.size
    if n == 0:
        return 1.0
    if n > WILCOXON_ENUMERATE_MAX:
        scipy_alternative = {0: "two-sided", -1: "less", 1: "greater"}[direction]
        return float(scipy_stats.wilcoxon(d, alternative=scipy_alternative, method="auto").pvalue)
    doubled_ranks = np.rint(2.0 * scipy_stats.rankdata(np.abs(d))).astype(np.int64)  # integers with ties
    observed = int(doubled_ranks[d > 0].sum())
    signs = np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int64)  # [2^n, n]
    totals = signs @ doubled_ranks
    above = float(np.mean(totals >= observed))
    below = float(np.mean(totals <= observed))
    if direction == 0:
        return min(1.0, 2.0 * min(above, below))
    return above if direction > 0 else below


def paired_p_value(
    differences: np.ndarray,
    *,
    test: TestName = "welch",
    alternative: Alternative = "two-sided",
    higher_is_better: bool = True,
) -> float:
    """p-value of the paired test on per-seed differences candidate - reference: the paired
    t-test for `welch`, the Wilcoxon signed-rank test for `mannwhitney`."""
    d = np.asarray(differences, np.float64)
    if d.size < 2:
        return math.nan
    direction = _direction(alternative, higher_is_better)
    if np.all(d == 0.0):
        return 1.0  # every pair agrees exactly: nothing to detect
    if test == "welch":
        sd = paired_sd(d)
        if sd == 0.0:
            return _exact_difference_p(float(d.mean()), direction)
        # t = mean(d) / (sd(d) / sqrt(n)), n - 1 degrees of freedom.
        return _t_p_value(float(d.mean() / (sd / math.sqrt(d.size))), d.size - 1, direction)
    if test == "mannwhitney":
        return signed_rank_p(d, direction)
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
    """Paired: the summaries of the paired runs only, so that difference = the mean of d."""
    difference: float
    """mean(candidate) - mean(reference); paired, the mean of the per-seed differences."""
    difference_ci: tuple[float, float]
    """Bootstrap CI of the difference: sides resampled apart, or pairs resampled together."""
    effect_size: float
    effect_size_name: str
    test: str
    alternative: Alternative
    p_value: float
    p_adjusted: float
    verdict: str
    paired: bool
    hedges_g: float
    """Hedges' g of the two sides as unpaired samples, comparable across paired and unpaired."""
    spread: float
    """The SD the standardised effects divide by: pooled SD, or paired the SD of the differences."""
    higher_is_better: bool
    test_key: TestName
    family: int
    """The number of tests in the Holm family this one was adjusted in."""
    detectable: DetectableEffect | None
    """The smallest difference the test detects with power 0.8 at alpha / family."""


def verdict(
    p_adjusted: float, difference: float, *, higher_is_better: bool, alternative: Alternative, alpha: float
) -> str:
    if math.isnan(p_adjusted):
        return INSUFFICIENT
    if p_adjusted >= alpha:
        return NO_DIFFERENCE if alternative == "two-sided" else NOT_WORSE
    improved = difference > 0 if higher_is_better else difference < 0
    return BETTER if improved else WORSE


def metric_test(
    reference: np.ndarray,
    candidate: np.ndarray,
    higher_is_better: bool,
    *,
    test: TestName = "welch",
    paired: bool = False,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> MetricTest:
    """One metric's test, before its family's adjustment (`adjust_family` sets p_adjusted,
    the verdict and the detectable effect). Paired: reference[i] and candidate[i] are one seed."""
    r, c = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    ref = summarize(r, confidence=confidence, resamples=resamples, seed=seed)
    cand = summarize(c, confidence=confidence, resamples=resamples, seed=seed)
    if paired:
        if r.size != c.size:
            raise ValueError(f"paired samples differ in length: {r.size} reference, {c.size} candidate")
        d = c - r
        p = paired_p_value(d, test=test, alternative=alternative, higher_is_better=higher_is_better)
        difference = float(d.mean()) if d.size else math.nan
        # Resampling whole pairs keeps what the two runs of a seed share.
        difference_ci = bootstrap_mean_ci(d, confidence=confidence, resamples=resamples, seed=seed)
        effect = cohens_dz(d)
        spread = paired_sd(d)
    else:
        p = p_value(r, c, test=test, alternative=alternative, higher_is_better=higher_is_better)
        difference = cand.mean - ref.mean
        difference_ci = bootstrap_difference_ci(r, c, confidence=confidence, resamples=resamples, seed=seed)
        effect = hedges_g(r, c) if test == "welch" else cliffs_delta(r, c)
        spread = pooled_sd(r, c)
    return MetricTest(
        reference=ref,
        candidate=cand,
        difference=difference,
        difference_ci=difference_ci,
        effect_size=effect,
        effect_size_name=effect_size_label(test, paired),
        test=label_of_test(test, paired),
        alternative=alternative,
        p_value=p,
        p_adjusted=math.nan,
        verdict=INSUFFICIENT,
        paired=paired,
        hedges_g=hedges_g(r, c),
        spread=spread,
        higher_is_better=higher_is_better,
        test_key=test,
        family=1,
        detectable=None,
    )


def adjust_family(tests: Mapping[Key, MetricTest], *, alpha: float, power: float = POWER) -> dict[Key, MetricTest]:
    """Holm-adjust the p-values of a family of tests, give each its verdict at `alpha` and its
    smallest detectable difference.

    The detectable difference is computed at alpha / m, Holm's first (strictest) level: the
    size a difference needs to be found with probability `power` whatever the other metrics
    show (with other metrics also different, Holm's later steps are easier)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    adjusted = holm([t.p_value for t in tests.values()])
    family = sum(not math.isnan(t.p_value) for t in tests.values())
    level = alpha / max(family, 1)
    results: dict[Key, MetricTest] = {}
    for (key, t), p_adj in zip(tests.items(), adjusted):
        n_r, n_c = t.reference.n, t.candidate.n
        results[key] = replace(
            t,
            p_adjusted=p_adj,
            verdict=verdict(p_adj, t.difference, higher_is_better=t.higher_is_better,
                            alternative=t.alternative, alpha=alpha),
            family=family,
            detectable=detectable_effect(t.test_key, n_r, n_c, t.spread, paired=t.paired, alpha=level,
                                         two_sided=t.alternative == "two-sided", power=power),
        )
    return results


def compare_samples(
    samples: Mapping[Key, tuple[np.ndarray, np.ndarray, bool]],
    *,
    test: TestName = "welch",
    paired: bool = False,
    alternative: Alternative = "two-sided",
    alpha: float = 0.05,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[Key, MetricTest]:
    """Test every metric of a family: {key: (reference values, candidate values, higher_is_better)};
    `paired`: the i-th reference and candidate values of every metric are runs of one seed."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; choose one of {sorted(TESTS)}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    raw = {
        key: metric_test(r, c, higher, test=test, paired=paired, alternative=alternative,
                         confidence=confidence, resamples=resamples, seed=seed)
        for key, (r, c, higher) in samples.items()
    }
    return adjust_family(raw, alpha=alpha)
