"""Score intervals: Student t over episodes per simulation, Welch-Satterthwaite for means of
simulations and categories."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from heartgrid.evaluation.scoring import mean_of_means, t_interval, weighted_mean


def test_t_interval_matches_scipy():
    values = [0.0, 0.25, 0.5, 0.5, 1.0, 0.75]
    s = t_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=sum(values) / 6, scale=stats.sem(values))
    assert (s.mean, s.n, s.df) == (pytest.approx(0.5), 6, 5.0)
    assert (s.low, s.high) == (pytest.approx(low), pytest.approx(high))


def test_one_episode_has_no_interval_nor_has_a_mean_over_it():
    one = t_interval([0.3])
    assert (one.mean, one.low, one.high) == (0.3, None, None)
    assert weighted_mean([one, t_interval([0.1, 0.2])]).low is None


def test_constant_scores_have_a_zero_width_interval():
    s = t_interval([1.0] * 4)
    assert (s.low, s.high) == (1.0, 1.0)
    both = weighted_mean([s, t_interval([0.0] * 3)])
    assert (both.mean, both.low, both.high) == (0.5, 0.5, 0.5)


def test_mean_of_simulations_uses_welch_satterthwaite():
    a, b = t_interval([0.1, 0.3, 0.2, 0.4]), t_interval([0.9, 0.5, 0.7])
    m = weighted_mean([a, b])
    va, vb = a.variance_of_mean / 4, b.variance_of_mean / 4  # weights 1/2, squared
    df = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert m.mean == pytest.approx((a.mean + b.mean) / 2)
    assert (m.low, m.high, m.df) == (pytest.approx(m.mean - half), pytest.approx(m.mean + half), pytest.approx(df))


def test_overall_weighs_categories_equally():
    nav = [t_interval([1.0, 0.8]), t_interval([0.6, 0.4]), t_interval([0.2, 0.0])]
    arena = [t_interval([0.0, 0.2])]
    overall = mean_of_means({"navigation": nav, "arena": arena})
    assert overall.mean == pytest.approx((0.5 + 0.1) / 2)  # not (0.9 + 0.5 + 0.1 + 0.1) / 4
    assert overall.low < overall.mean < overall.high and overall.n == 8
