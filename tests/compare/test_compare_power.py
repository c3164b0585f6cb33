"""The smallest detectable difference: standard sample-size tables, simulated power at the
computed MDE, rank tests that cannot reach alpha, and the figure in a report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from heartgrid.compare.power import (
    POWER,
    _mann_whitney_null,
    _signed_rank_null,
    detectable_effect,
    rank_test_smallest_p,
    standardised_mde,
    t_test_mde,
)
from heartgrid.compare.stats import compare_samples, p_value, paired_p_value


def test_t_test_mde_agrees_with_sample_size_tables():
    """Cohen's tables (alpha 0.05 two-sided, power 0.8): d = 0.8 needs 26 runs a side, d = 0.5
    needs 64; paired, d_z = 0.5 needs 34 pairs."""
    assert t_test_mde(26, 26, paired=False, alpha=0.05, two_sided=True) <= 0.8
    assert t_test_mde(25, 25, paired=False, alpha=0.05, two_sided=True) > 0.8
    assert t_test_mde(64, 64, paired=False, alpha=0.05, two_sided=True) <= 0.5
    assert t_test_mde(63, 63, paired=False, alpha=0.05, two_sided=True) > 0.5
    assert t_test_mde(34, 34, paired=True, alpha=0.05, two_sided=True) <= 0.5
    assert t_test_mde(33, 33, paired=True, alpha=0.05, two_sided=True) > 0.5
    # One-sided tests and larger alphas detect smaller differences; so do more runs.
    two = t_test_mde(4, 4, paired=False, alpha=0.05, two_sided=True)
    assert t_test_mde(4, 4, paired=False, alpha=0.05, two_sided=False) < two
    assert t_test_mde(4, 4, paired=False, alpha=0.025, two_sided=True) > two
    assert t_test_mde(8, 8, paired=False, alpha=0.05, two_sided=True) < two
    assert math.isfinite(t_test_mde(2, 2, paired=True, alpha=0.025, two_sided=True))


def _simulated_power(test: str, paired: bool, n: int, shift: float, draws: int, alternative: str) -> float:
    """How often the report's test rejects at 0.05 for normal data shifted up by `shift` SDs
    (paired: differences of SD 1 and mean `shift`). "worse" for a lower-is-better metric is
    the alternative "candidate above reference"."""
    rng = np.random.default_rng(99)
    hits = 0
    for _ in range(draws):
        if paired:
            p = paired_p_value(rng.standard_normal(n) + shift, test=test, alternative=alternative,
                               higher_is_better=False)
        else:
            p = p_value(rng.standard_normal(n), rng.standard_normal(n) + shift, test=test,
                        alternative=alternative, higher_is_better=False)
        hits += p < 0.05
    return hits / draws


@pytest.mark.parametrize("test, paired, n, two_sided", [
    ("welch", False, 4, True),
    ("welch", True, 4, False),
    ("mannwhitney", False, 5, True),
    ("mannwhitney", True, 8, True),
])
def test_tests_detect_their_mde_with_the_stated_power(test, paired, n, two_sided):
    """Normal data shifted by the computed MDE: the report's own p-values reject about 80% of
    the time (independent seeded draws; Welch is a little below Student's t, which the MDE
    assumes, and the rank tests' MDE is itself simulated)."""
    mde = standardised_mde(test, n, n, paired=paired, alpha=0.05, two_sided=two_sided)
    alternative = "two-sided" if two_sided else "worse"
    power = _simulated_power(test, paired, n, mde, draws=1500, alternative=alternative)
    assert power == pytest.approx(POWER, abs=0.05)


def test_rank_tests_without_an_attainable_alpha_detect_nothing():
    # Mann-Whitney 3 vs 3: smallest two-sided p 2/20 = 0.1. Wilcoxon 5 pairs: 2/32 = 0.0625.
    assert rank_test_smallest_p(3, 3, paired=False, two_sided=True) == pytest.approx(0.1)
    assert rank_test_smallest_p(5, 5, paired=True, two_sided=True) == pytest.approx(0.0625)
    assert standardised_mde("mannwhitney", 3, 3, paired=False, alpha=0.05, two_sided=True) == math.inf
    assert standardised_mde("mannwhitney", 5, 5, paired=True, alpha=0.05, two_sided=True) == math.inf
    assert math.isfinite(standardised_mde("mannwhitney", 5, 5, paired=True, alpha=0.05, two_sided=False))
    effect = detectable_effect("mannwhitney", 4, 4, 0.3, paired=True, alpha=0.05, two_sided=True)
    assert effect.difference == math.inf and effect.effect_name == "d_z"
    assert math.isnan(standardised_mde("welch", 1, 4, paired=False, alpha=0.05, two_sided=True))


def test_null_distributions_are_exact():
    # Mann-Whitney 2 vs 2: the 6 orderings give U = 0, 1, 2, 2, 3, 4.
    assert _mann_whitney_null(2, 2) == (1, 1, 2, 1, 1)
    assert sum(_mann_whitney_null(4, 6)) == math.comb(10, 4)
    # Signed-rank, 3 pairs: T+ over the 8 sign patterns of ranks 1, 2, 3.
    assert _signed_rank_null(3) == (1, 1, 1, 2, 1, 1, 1)
    counts = np.array(_mann_whitney_null(4, 5), dtype=float)
    u = np.arange(counts.size)
    # P(U >= 18) for 4 vs 5 equals scipy's exact one-sided p at U = 18.
    r, c = np.array([0.0, 0.1, 0.2, 0.3]), np.array([0.25, 0.4, 0.5, 0.6, 0.7])
    observed = int((c[:, None] > r[None, :]).sum())
    exact = scipy_stats.mannwhitneyu(c, r, alternative="greater", method="exact").pvalue
    assert counts[u >= observed].sum() / counts.sum() == pytest.approx(exact)


def test_the_mde_of_a_report_is_standardised_times_spread_at_alpha_over_the_family():
    rng = np.random.default_rng(3)
    family = {f"m{i}": (rng.normal(0, 1, 4), rng.normal(0, 1, 4), True) for i in range(2)}
    results = compare_samples(family, resamples=20)
    for result in results.values():
        e = result.detectable
        assert result.family == 2 and e.alpha == pytest.approx(0.025) and e.power == POWER
        assert e.standardised == pytest.approx(t_test_mde(4, 4, paired=False, alpha=0.025, two_sided=True))
        assert e.difference == pytest.approx(e.standardised * result.spread) and e.method == "noncentral t"
    one_sided = compare_samples({"m": family["m0"]}, alternative="worse", resamples=20)["m"].detectable
    assert one_sided.standardised == pytest.approx(t_test_mde(4, 4, paired=False, alpha=0.05, two_sided=False))
