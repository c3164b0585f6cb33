"""Statistics of run comparisons on synthetic samples: exact values, detection, error rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from compare_synth import max_false_rate
from scipy import stats as scipy_stats

from heartgrid.compare.metric_spec import DEFAULT_METRICS, MetricSpec, MetricSpecError, parse_metrics
from heartgrid.compare.stats import (
    BETTER,
    INSUFFICIENT,
    NO_DIFFERENCE,
    NOT_WORSE,
    WORSE,
    bootstrap_band,
    bootstrap_mean_ci,
    cliffs_delta,
    compare_samples,
    hedges_g,
    holm,
    p_value,
)

# ---- exact values ---------------------------------------------------------------------------


def test_hedges_g_exact():
    # Difference 1, pooled sd 1, correction 1 - 3 / (4 * 6 - 9) = 0.8.
    assert hedges_g(np.array([1.0, 2, 3]), np.array([2.0, 3, 4])) == pytest.approx(0.8)
    assert hedges_g(np.array([2.0, 3, 4]), np.array([1.0, 2, 3])) == pytest.approx(-0.8)
    assert hedges_g(np.array([1.0, 1]), np.array([1.0, 1])) == 0.0
    assert hedges_g(np.array([1.0, 1]), np.array([2.0, 2])) == math.inf
    assert math.isnan(hedges_g(np.array([1.0]), np.array([2.0, 3])))


def test_cliffs_delta_exact():
    # 9 pairs (c, r): above are (2,1) (3,1) (3,2) (4,1) (4,2) (4,3) = 6, below is (2,3) = 1.
    assert cliffs_delta(np.array([1.0, 2, 3]), np.array([2.0, 3, 4])) == pytest.approx(5 / 9)
    assert cliffs_delta(np.array([1.0, 2]), np.array([5.0, 6])) == 1.0
    assert cliffs_delta(np.array([5.0, 6]), np.array([1.0, 2])) == -1.0


def test_holm_exact():
    # Sorted: 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> raised to 0.06 (step-down).
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = holm([0.2, math.nan, 0.9])
    assert adjusted[0] == pytest.approx(0.4) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.9)
    assert holm([0.6, 0.7]) == [1.0, 1.0]


def test_welch_and_mann_whitney_match_scipy_and_respect_direction():
    r, c = np.array([1.0, 1.4, 0.9, 1.2]), np.array([0.5, 0.8, 0.6, 0.7])
    two = scipy_stats.ttest_ind(c, r, equal_var=False).pvalue
    assert p_value(r, c) == pytest.approx(two)
    # "worse" for a higher-is-better metric: candidate lower, so the one-sided p is half.
    assert p_value(r, c, alternative="worse") == pytest.approx(two / 2)
    # The same data for a lower-is-better metric: the candidate is better, p near 1.
    assert p_value(r, c, alternative="worse", higher_is_better=False) == pytest.approx(1 - two / 2)
    mw = scipy_stats.mannwhitneyu(c, r, alternative="less").pvalue
    assert p_value(r, c, test="mannwhitney", alternative="worse") == pytest.approx(mw)
    # Exact Mann-Whitney, 4 vs 4 fully separated: 1 / C(8, 4) one-sided.
    assert mw == pytest.approx(1 / 70)


def test_degenerate_samples():
    same = np.array([2.0, 2.0, 2.0])
    assert p_value(same, same) == 1.0
    assert p_value(same, same + 1) == 0.0
    assert p_value(same, same + 1, alternative="worse") == 1.0
    assert p_value(same, same - 1, alternative="worse") == 0.0
    assert math.isnan(p_value(np.array([1.0]), same))
    result = compare_samples({"m": (np.array([1.0]), same, True)}, resamples=100)["m"]
    assert result.verdict == INSUFFICIENT
    # One run gives no interval (a bootstrap of it would be a zero-width [1, 1]), nor does a
    # difference with one run on a side; the other side's interval stays.
    assert math.isnan(result.reference.ci_low) and math.isnan(result.reference.ci_high)
    assert all(math.isnan(x) for x in result.difference_ci)
    assert result.candidate.ci_low == result.candidate.ci_high == 2.0
    assert math.isnan(result.reference.std) and result.candidate.std == 0.0
    low, high = bootstrap_band(np.array([[1.0, 2.0]]))  # no band around one run
    assert np.isnan(low).all() and np.isnan(high).all()


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = np.array([0.3, 0.9, 1.1, 1.4, 2.0])
    low, high = bootstrap_mean_ci(values, seed=3)
    assert (low, high) == bootstrap_mean_ci(values, seed=3)
    assert low < values.mean() < high
    assert values.min() <= low and high <= values.max()
    assert bootstrap_mean_ci(np.array([4.0, 4.0])) == (4.0, 4.0)


def test_bootstrap_band_is_pointwise_interval_of_mean_curve():
    curves = np.array([[0.0, 1.0, 2.0], [0.0, 1.2, 2.4], [0.0, 0.8, 1.6]])
    low, high = bootstrap_band(curves)
    assert low[0] == high[0] == 0.0
    assert np.all(low[1:] < curves.mean(axis=0)[1:]) and np.all(curves.mean(axis=0)[1:] < high[1:])


def test_bootstrap_coverage_with_enough_runs():
    """The percentile interval's coverage at n=20 is close to its nominal 95%."""
    rng = np.random.default_rng(11)
    draws = 300
    covered = sum(
        low <= 0.0 <= high
        for low, high in (bootstrap_mean_ci(rng.normal(size=20), resamples=1000, seed=i) for i in range(draws))
    )
    assert covered / draws >= 0.90


# ---- verdicts -------------------------------------------------------------------------------


def test_planted_difference_is_detected_with_direction():
    rng = np.random.default_rng(0)
    reference = rng.normal(1.0, 0.1, size=5)
    candidate = rng.normal(0.6, 0.1, size=5)  # 4 sd lower
    results = compare_samples(
        {"reward": (reference, candidate, True), "failures": (reference, candidate, False)}, resamples=500
    )
    assert results["reward"].verdict == WORSE
    assert results["failures"].verdict == BETTER  # lower is better: the drop is an improvement
    assert results["reward"].difference == pytest.approx(candidate.mean() - reference.mean())
    assert results["reward"].effect_size < -2
    low, high = results["reward"].difference_ci
    assert low < results["reward"].difference < high < 0
    one_sided = compare_samples({"reward": (reference, candidate, True)}, alternative="worse", resamples=100)
    assert one_sided["reward"].verdict == WORSE


@pytest.mark.parametrize("test", ["welch", "mannwhitney"])
def test_planted_difference_detection_rate(test):
    """A 3-sd shift with 5 runs a side is found in nearly every seeded draw."""
    rng = np.random.default_rng(1)
    draws = 300
    found = sum(
        compare_samples({"m": (rng.normal(0, 1, 5), rng.normal(3, 1, 5), True)}, test=test, resamples=50)["m"].verdict
        == BETTER
        for _ in range(draws)
    )
    assert found / draws >= 0.9


@pytest.mark.parametrize(
    "test, alternative, sampler, draws",
    [
        ("welch", "two-sided", lambda rng, n: rng.normal(3.0, 0.5, n), 2000),
        ("welch", "worse", lambda rng, n: rng.normal(3.0, 0.5, n), 2000),
        # scipy's exact Mann-Whitney is slower per call; the test is exact, so fewer draws.
        ("mannwhitney", "two-sided", lambda rng, n: rng.lognormal(0.0, 1.0, n), 800),
    ],
)
def test_same_distribution_called_different_at_most_alpha(test, alternative, sampler, draws):
    """Two samples of one distribution: the rate of any verdict other than "no difference" stays
    within the stated alpha (seeded draws, 3-sigma binomial allowance)."""
    rng = np.random.default_rng(2024)
    calm = {NO_DIFFERENCE, NOT_WORSE}
    false_calls = sum(
        compare_samples(
            {"m": (sampler(rng, 5), sampler(rng, 5), True)}, test=test, alternative=alternative, resamples=20
        )["m"].verdict
        not in calm
        for _ in range(draws)
    )
    assert false_calls / draws <= max_false_rate(draws)


def test_family_of_metrics_keeps_alpha_with_holm():
    """Three metrics per report, none different: the chance that *any* is called different
    stays at alpha (without the Holm adjustment it would be about 1 - 0.95^3 = 14%)."""
    rng = np.random.default_rng(7)
    draws = 1000
    any_call = 0
    for _ in range(draws):
        family = {f"m{i}": (rng.normal(size=4), rng.normal(size=4), True) for i in range(3)}
        results = compare_samples(family, resamples=20)
        any_call += any(r.verdict != NO_DIFFERENCE for r in results.values())
    assert any_call / draws <= max_false_rate(draws)


def test_compare_samples_rejects_bad_settings():
    sample = {"m": (np.ones(3), np.ones(3), True)}
    with pytest.raises(ValueError, match="unknown test"):
        compare_samples(sample, test="ztest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        compare_samples(sample, alpha=1.5)


# ---- metric specs ---------------------------------------------------------------------------


def test_metric_spec_parsing_and_directions():
    assert MetricSpec.parse("env_agent/heart.get") == MetricSpec("final", "env_agent/heart.get", True)
    assert MetricSpec.parse("auc:overview/reward") == MetricSpec("auc", "overview/reward", True)
    assert MetricSpec.parse("env_agent/action.move.failed").higher_is_better is False
    assert MetricSpec.parse("timing/env_ms").higher_is_better is False
    assert MetricSpec.parse("final:timing/env_ms:higher").higher_is_better is True
    assert MetricSpec.parse("losses/value_loss:lower") == MetricSpec("final", "losses/value_loss", False)
    spec = MetricSpec.parse("auc:task_reward/a:b/rewards.mean")
    assert spec.name == "task_reward/a:b/rewards.mean"
    assert MetricSpec.parse(spec.key) == spec
    assert [s.key for s in parse_metrics(None)] == [MetricSpec.parse(m).key for m in DEFAULT_METRICS]
    assert len(parse_metrics(["a", "final:a", "final:a:higher"])) == 1
    with pytest.raises(MetricSpecError, match="names no metric"):
        MetricSpec.parse("auc:")
    # A mistyped reduction is named as such, not taken for part of a metric's name.
    with pytest.raises(MetricSpecError, match="unknown reduction 'fnal'; did you mean 'final'"):
        MetricSpec.parse("fnal:overview/reward")


def test_late_spec_parses():
    assert MetricSpec.parse("late:env_agent/heart.get") == MetricSpec("late", "env_agent/heart.get", True)
    assert MetricSpec.parse("late:env_agent/heart.get").key == "late:env_agent/heart.get:higher"
