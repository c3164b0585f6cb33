"""The smallest difference a comparison can detect: its minimum detectable effect (MDE).

For the test a report uses, its number of runs, its alpha and sidedness, the *standardised* MDE
is the true shift, in units of the runs' standard deviation, that the test detects with
probability `power` (0.8). Times the spread the runs showed it becomes a difference in the
metric's own units: "at 4 runs a side this report could only have seen differences of 0.02
hearts or more". The spread is an estimate from the same few runs, so the figure in units is
as uncertain as that standard deviation; the standardised figure depends on the design alone.

How the power is computed, per test:
- t-tests, exactly from the noncentral t distribution (scipy.stats.nct):
  * unpaired: Student's two-sample t, df = n_r + n_c - 2, noncentrality d * sqrt(n_r n_c /
    (n_r + n_c)) with d = shift / pooled SD. Welch's test, which the reports run, estimates two
    variances and has slightly less power with few runs (at this MDE with 4 runs a side it
    rejects about 77% of normal draws, not 80%); the Student figure is the standard planning
    value and a slightly optimistic one for Welch;
  * paired: one-sample t on the per-seed differences, df = n - 1, noncentrality d_z * sqrt(n)
    with d_z = shift / SD of the differences.
- rank tests (Mann-Whitney U, Wilcoxon signed-rank): their exact small-sample null
  distributions are discrete, and at 3-5 runs the attainable alpha is far below the nominal one
  or no outcome reaches it at all (Wilcoxon with 4 pairs: smallest two-sided p 0.125). A normal
  approximation would hide exactly that, so the power is simulated: normal data shifted by d,
  `SIMULATIONS` seeded draws, the exact critical value of the test's null distribution. The MDE
  is infinite when no outcome reaches alpha. Above RANK_EXACT_MAX runs a side the t-test's MDE
  is divided by the square root of the rank tests' asymptotic relative efficiency under
  normality, 3/pi.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats

POWER = 0.8
SIMULATIONS = 4_000
RANK_EXACT_MAX = 30
"""Largest runs a side (pairs for Wilcoxon) whose rank-test power is simulated exactly."""
RANK_ARE = 3.0 / math.pi
"""Asymptotic relative efficiency of Mann-Whitney and Wilcoxon to the t-test for normal data."""
_MAX_EFFECT = 1e3


@dataclass(frozen=True)
class DetectableEffect:
    """The smallest difference the test detects with probability `power`."""

    difference: float
    """In the metric's units: `standardised` times `spread` (inf when nothing is detectable)."""
    standardised: float
    effect_name: str
    """"d" (shift / pooled SD) for unpaired tests, "d_z" (shift / SD of the differences) for paired."""
    spread: float
    spread_name: str
    alpha: float
    """The per-test level the MDE is computed at: the report's alpha over its Holm family size."""
    power: float
    method: str


def _t_power(effect: float, df: float, scale: float, alpha: float, two_sided: bool) -> float:
    """Power of a t-test whose statistic is noncentral t with noncentrality effect * scale."""
    noncentrality = effect * scale
    if two_sided:
        critical = scipy_stats.t.ppf(1.0 - alpha / 2.0, df)
        # Rejections in the wrong tail count too. For a positive shift they are below alpha / 2
        # and vanish fast; scipy returns NaN for some of those tiny values (df 1-2), read as 0.
        wrong_tail = float(scipy_stats.nct.cdf(-critical, df, noncentrality))
        right_tail = float(scipy_stats.nct.sf(critical, df, noncentrality))
        return right_tail + (0.0 if math.isnan(wrong_tail) else wrong_tail)
    critical = scipy_stats.t.ppf(1.0 - alpha, df)
    return float(scipy_stats.nct.sf(critical, df, noncentrality))


def _smallest_effect(power_at: Callable[[float], float], target: float) -> float:
    """The smallest effect >= 0 whose power reaches `target`, for a power rising with the effect."""
    high = 1.0
    while power_at(high) < target:
        high *= 2.0
        if high > _MAX_EFFECT:
            return math.inf
    return float(optimize.brentq(lambda d: power_at(d) - target, 0.0, high, xtol=1e-6))


def t_test_mde(n_reference: int, n_candidate: int, *, paired: bool, alpha: float, two_sided: bool,
               power: float = POWER) -> float:
    """Standardised MDE of the unpaired (d) or paired (d_z) t-test."""
    if paired:
        df, scale = n_reference - 1, math.sqrt(n_reference)
    else:
        df = n_reference + n_candidate - 2
        scale = math.sqrt(n_reference * n_candidate / (n_reference + n_candidate))
    return _smallest_effect(lambda d: _t_power(d, df, scale, alpha, two_sided), power)


# ---- rank tests ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _mann_whitney_null(m: int, n: int) -> tuple[int, ...]:
    """Counts of U = #{(i, j): candidate_j > reference_i} over all C(m+n, m) orderings of m
    reference and n candidate runs (no ties). The largest of all values is either a candidate
    run, above all m reference runs (U = m + U of the rest), or a reference run (U of the rest)."""
    if m == 0 or n == 0:
        return (1,)
    counts = [0] * (m * n + 1)
    for u, ways in enumerate(_mann_whitney_null(m, n - 1)):
        counts[u + m] += ways
    for u, ways in enumerate(_mann_whitney_null(m - 1, n)):
        counts[u] += ways
    return tuple(counts)


@functools.lru_cache(maxsize=None)
def _signed_rank_null(n: int) -> tuple[int, ...]:
    """Counts of T+ (the sum of the ranks of the positive differences) over the 2^n sign
    patterns: the coefficients of prod_k (1 + x^k), rank k either positive or not."""
    counts = [1]
    for k in range(1, n + 1):
        longer = counts + [0] * k
        for t in range(len(counts)):
            longer[t + k] += counts[t]
        counts = longer
    return tuple(counts)


def _upper_critical(counts: tuple[int, ...], level: float) -> float:
    """The smallest statistic value u with P(stat >= u) < level under the null; inf if none."""
    total = sum(counts)
    tail = 0
    critical = math.inf
    for u in range(len(counts) - 1, -1, -1):
        tail += counts[u]
        if tail / total >= level:
            break
        critical = u
    return critical


def _rank_statistics(
    rng: np.random.Generator, n_reference: int, n_candidate: int, paired: bool
) -> Callable[[float], np.ndarray]:
    """Seeded normal draws and a function giving each draw's rank statistic at shift d."""
    if paired:
        # T+ = #{i <= j: (x_i + x_j) / 2 > 0} (Walsh averages; equal to the positive rank sum
        # without ties), so the statistic at shift d is a count of sums above -2d.
        x = rng.standard_normal((SIMULATIONS, n_reference))
        i, j = np.triu_indices(n_reference)
        walsh = x[:, i] + x[:, j]
        return lambda d: (walsh > -2.0 * d).sum(axis=1)
    r = rng.standard_normal((SIMULATIONS, n_reference))
    c = rng.standard_normal((SIMULATIONS, n_candidate))
    gaps = c[:, None, :] - r[:, :, None]  # [draw, reference run, candidate run]
    return lambda d: (gaps > -d).sum(axis=(1, 2))


@functools.lru_cache(maxsize=256)
def rank_test_mde(n_reference: int, n_candidate: int, *, paired: bool, alpha: float, two_sided: bool,
                  power: float = POWER) -> float:
    """Standardised MDE (d_z for Wilcoxon, d for Mann-Whitney) of the exact rank test."""
    if max(n_reference, n_candidate) > RANK_EXACT_MAX:
        t_mde = t_test_mde(n_reference, n_candidate, paired=paired, alpha=alpha, two_sided=two_sided, power=power)
        return t_mde / math.sqrt(RANK_ARE)
    counts = _signed_rank_null(n_reference) if paired else _mann_whitney_null(n_reference, n_candidate)
    top = len(counts) - 1
    level = alpha / 2.0 if two_sided else alpha
    upper = _upper_critical(counts, level)
    if math.isinf(upper):
        return math.inf  # no outcome of the test reaches alpha at this number of runs
    lower = top - upper  # both null distributions are symmetric about top / 2
    statistic = _rank_statistics(np.random.default_rng(0), n_reference, n_candidate, paired)

    def power_at(d: float) -> float:
        s = statistic(d)
        rejected = s >= upper
        if two_sided:
            rejected |= s <= lower
        return float(rejected.mean())

    # The simulated power is a step function of d (each draw's statistic counts pairs above -d):
    # bisect for the smallest d reaching the target instead of a root finder.
    low, high = 0.0, 1.0
    while power_at(high) < power:
        low, high = high, high * 2.0
    for _ in range(40):
        middle = (low + high) / 2.0
        low, high = (middle, high) if power_at(middle) < power else (low, middle)
    return high


def rank_test_smallest_p(n_reference: int, n_candidate: int, *, paired: bool, two_sided: bool) -> float:
    """The smallest p-value the exact rank test can give (all runs ordered one way)."""
    total = 2**n_reference if paired else math.comb(n_reference + n_candidate, n_reference)
    return min(1.0, (2.0 if two_sided else 1.0) / total)


@functools.lru_cache(maxsize=1024)
def standardised_mde(test: str, n_reference: int, n_candidate: int, *, paired: bool, alpha: float,
                     two_sided: bool, power: float = POWER) -> float:
    """`test` is "welch" or "mannwhitney"; with `paired` their counterparts (paired t, Wilcoxon),
    and n_reference = n_candidate = the number of pairs."""
    if min(n_reference, n_candidate) < 2:
        return math.nan
    if test == "welch":
        return t_test_mde(n_reference, n_candidate, paired=paired, alpha=alpha, two_sided=two_sided, power=power)
    return rank_test_mde(n_reference, n_candidate, paired=paired, alpha=alpha, two_sided=two_sided, power=power)


def detectable_effect(test: str, n_reference: int, n_candidate: int, spread: float, *, paired: bool,
                      alpha: float, two_sided: bool, power: float = POWER) -> DetectableEffect:
    standardised = standardised_mde(test, n_reference, n_candidate, paired=paired, alpha=alpha,
                                    two_sided=two_sided, power=power)
    if test == "welch":
        method = "noncentral t"
    elif max(n_reference, n_candidate) > RANK_EXACT_MAX:
        method = "t-test MDE over sqrt(3/pi), the rank test's asymptotic efficiency"
    else:
        method = f"simulated exact test on normal data ({SIMULATIONS:,} draws)"
    # A test that cannot reject detects nothing, whatever the spread (0 x inf would be NaN).
    difference = math.inf if math.isinf(standardised) else standardised * spread
    return DetectableEffect(
        difference=difference,
        standardised=standardised,
        effect_name="d_z" if paired else "d",
        spread=spread,
        spread_name="SD of the per-seed differences" if paired else "pooled SD",
        alpha=alpha,
        power=power,
        method=method,
    )
