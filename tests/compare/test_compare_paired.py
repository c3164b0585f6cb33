"""Paired statistics: runs paired by seed, the paired t and Wilcoxon signed-rank tests, and how
much more a paired test detects when the two sides share their seeds' noise."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from compare_synth import ALPHA, heartgrid, max_false_rate, write_side
from scipy import stats as scipy_stats

from heartgrid.compare.pairing import (
    PAIRING_MODES,
    Pairing,
    PairingError,
    pair_by_seed,
    pair_for_test,
    seed_list,
)
from heartgrid.compare.power import t_test_mde
from heartgrid.compare.stats import (
    BETTER,
    NO_DIFFERENCE,
    WORSE,
    cohens_dz,
    compare_samples,
    hedges_g,
    paired_p_value,
    signed_rank_p,
)
from heartgrid.tools import compare_cmd

# ---- the tests themselves -------------------------------------------------------------------


def test_paired_t_matches_scipy_and_respects_direction():
    r = np.array([1.0, 1.4, 0.9, 1.2, 1.1])
    c = np.array([0.8, 1.3, 0.85, 1.0, 0.9])
    d = c - r
    two = scipy_stats.ttest_rel(c, r).pvalue
    assert paired_p_value(d) == pytest.approx(two)
    assert paired_p_value(d, alternative="worse") == pytest.approx(two / 2)
    assert paired_p_value(d, alternative="worse", higher_is_better=False) == pytest.approx(1 - two / 2)
    # d_z = mean(d) / sd(d), the statistic's own scale: t = d_z * sqrt(n).
    assert cohens_dz(d) == pytest.approx(d.mean() / d.std(ddof=1))
    assert cohens_dz(d) * math.sqrt(d.size) == pytest.approx(scipy_stats.ttest_rel(c, r).statistic)


def _brute_force_signed_rank(d: np.ndarray, alternative: str) -> float:
    d = d[d != 0]
    ranks = scipy_stats.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    totals = np.array([sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product((0, 1), repeat=d.size)])
    above, below = np.mean(totals >= observed - 1e-9), np.mean(totals <= observed + 1e-9)
    return {"greater": above, "less": below, "two-sided": min(1.0, 2 * min(above, below))}[alternative]


@pytest.mark.parametrize("d", [
    [0.3, -0.1, 0.5, 0.7, 0.2, -0.4],           # no ties: scipy's exact distribution applies
    [0.1, 0.2, 0.2, 0.3, -0.2],                 # ties in |d|: mid-ranks, enumerated exactly
    [0.0, 0.25, 0.3, 0.4, -0.1],                # a zero difference has no sign: dropped
    [1.0, 1.0, 1.0, 1.0],                       # every pair moved by the same amount
])
def test_signed_rank_is_exact_with_ties_and_zeros(d):
    d = np.array(d)
    for direction, alternative in ((0, "two-sided"), (1, "greater"), (-1, "less")):
        assert signed_rank_p(d, direction) == pytest.approx(_brute_force_signed_rank(d, alternative))
    if np.unique(np.abs(d)).size == d.size and np.all(d != 0):
        assert signed_rank_p(d, 0) == pytest.approx(scipy_stats.wilcoxon(d, method="exact").pvalue)


def test_signed_rank_smallest_p_values():
    # All n differences one way: 1 / 2^n one-sided. With 4 pairs two-sided 0.125: a signed-rank
    # test cannot reach 0.05 with 5 pairs or fewer (6 pairs: 0.031).
    assert paired_p_value(np.ones(4) * -1, test="mannwhitney") == pytest.approx(0.125)
    assert paired_p_value(np.ones(5) * -1, test="mannwhitney", alternative="worse") == pytest.approx(1 / 32)
    assert paired_p_value(np.ones(6) * -1, test="mannwhitney") == pytest.approx(2 / 64)


def test_degenerate_differences():
    assert paired_p_value(np.zeros(4)) == 1.0
    assert paired_p_value(np.full(3, -0.5)) == 0.0  # an exact difference, no noise
    assert paired_p_value(np.full(3, -0.5), alternative="worse", higher_is_better=False) == 1.0
    assert math.isnan(paired_p_value(np.array([0.3])))
    assert cohens_dz(np.full(3, 0.2)) == math.inf and cohens_dz(np.zeros(3)) == 0.0
    # Equal differences computed in other orders differ by rounding: still no spread.
    base = np.array([0.1, 0.7, 0.2])
    rounded = (base - 0.1) - base
    assert np.ptp(rounded) > 0 and cohens_dz(rounded) == -math.inf
    assert paired_p_value(rounded, alternative="worse") == 0.0


def test_compare_samples_paired_result():
    r = np.array([1.0, 2.0, 3.0, 4.0])
    c = np.array([1.1, 2.3, 3.1, 4.3])  # differences 0.1, 0.3, 0.1, 0.3
    result = compare_samples({"m": (r, c, True)}, paired=True, resamples=500)["m"]
    assert result.paired and result.test == "paired t-test" and result.effect_size_name == "d_z"
    assert result.difference == pytest.approx(0.2)
    assert result.effect_size == pytest.approx(0.2 / np.std([0.1, 0.3, 0.1, 0.3], ddof=1))
    assert result.hedges_g == pytest.approx(hedges_g(r, c))
    assert result.spread == pytest.approx(np.std(c - r, ddof=1))
    low, high = result.difference_ci
    assert 0.1 <= low <= 0.2 <= high <= 0.3  # resampled pairs: the interval lies within the differences
    assert result.verdict == BETTER
    rank = compare_samples({"m": (r, c, True)}, paired=True, test="mannwhitney", resamples=50)["m"]
    assert rank.test == "Wilcoxon signed-rank test" and rank.p_value == pytest.approx(0.125)
    with pytest.raises(ValueError, match="paired samples differ in length"):
        compare_samples({"m": (r, c[:3], True)}, paired=True)


@pytest.mark.parametrize("test, n, draws", [("welch", 5, 2000), ("mannwhitney", 8, 1000)])
def test_paired_tests_keep_alpha_on_unchanged_code(test, n, draws):
    """Pairs of one distribution (a shared seed effect plus run noise): the paired tests call
    them different at most alpha of the time."""
    rng = np.random.default_rng(5)
    false_calls = 0
    for _ in range(draws):
        seed_effect = rng.normal(0.0, 1.0, n)
        r = seed_effect + rng.normal(0.0, 0.3, n)
        c = seed_effect + rng.normal(0.0, 0.3, n)
        verdict = compare_samples({"m": (r, c, True)}, test=test, paired=True, resamples=20)["m"].verdict
        false_calls += verdict != NO_DIFFERENCE
    assert false_calls / draws <= max_false_rate(draws)


# ---- common random numbers: the paired test finds what the unpaired one misses ----------------


def test_shared_seed_noise_paired_test_detects_what_unpaired_misses():
    """The planted-change situation of issue #13, synthetic: a seed's luck (maps, priorities,
    initial weights) moves both sides' runs of that seed alike (sd 1), the change itself adds
    run noise (sd 0.2) and shifts the candidate by 0.6. At 4 seeds a side the unpaired test
    sees d = 0.6 / 1.02 = 0.59 and rarely finds it; the paired test sees d_z = 0.6 / 0.28 = 2.1,
    about its smallest detectable d_z at n=4 (2.13 at power 0.8), and finds it most of the time.
    The detection rates match the power the MDE computation predicts."""
    rng = np.random.default_rng(13)
    draws, n, shift, seed_sd, run_sd = 400, 4, -0.6, 1.0, 0.2
    found = {"paired": 0, "unpaired": 0}
    for _ in range(draws):
        luck = rng.normal(0.0, seed_sd, n)
        r = luck + rng.normal(0.0, run_sd, n)
        c = luck + shift + rng.normal(0.0, run_sd, n)
        for name, paired in (("paired", True), ("unpaired", False)):
            result = compare_samples({"m": (r, c, True)}, paired=paired, alternative="worse", resamples=20)["m"]
            found[name] += result.verdict == WORSE
    rates = {k: v / draws for k, v in found.items()}
    assert rates["unpaired"] <= 0.25
    assert rates["paired"] >= 0.75
    # Predicted power of the paired t at d_z = 0.6 / (0.2 sqrt 2), one-sided alpha 0.05, 3 df.
    d_z = abs(shift) / (run_sd * math.sqrt(2))
    predicted = scipy_stats.nct.sf(scipy_stats.t.ppf(0.95, 3), 3, d_z * math.sqrt(n))
    assert rates["paired"] == pytest.approx(predicted, abs=0.07)
    # Unpaired it would need far more seeds: its MDE at 4 a side is several times the shift.
    pooled = math.sqrt(seed_sd**2 + run_sd**2)
    unpaired_mde = t_test_mde(n, n, paired=False, alpha=ALPHA, two_sided=False) * pooled
    paired_mde = t_test_mde(n, n, paired=True, alpha=ALPHA, two_sided=False) * run_sd * math.sqrt(2)
    assert unpaired_mde > 3 * abs(shift) and paired_mde < abs(shift)


# ---- pairing runs by seed -------------------------------------------------------------------


def test_pairing_rule():
    same = pair_by_seed({"a0": 0, "a1": 1, "a2": 2}, {"b1": 1, "b0": 0, "b2": 2})
    assert same == Pairing(True, "both sides ran the same seeds", [(0, "a0", "b0"), (1, "a1", "b1"), (2, "a2", "b2")])
    assert same.describe() == "runs paired by seed (system.seed in each run's config.json): 3 pairs, seeds 0-2"
    other = pair_by_seed({"a0": 0, "a1": 1}, {"b4": 4, "b5": 5})
    assert not other.paired
    assert other.describe() == "runs unpaired: the sides ran different seeds (reference: 0-1, candidate: 4-5)"
    subset = {"a0": 0, "a1": 1, "a2": 2, "a3": 3}, {"b0": 0, "b1": 1}
    assert not pair_by_seed(*subset).paired  # auto pairs only the same set of seeds
    forced = pair_by_seed(*subset, "paired")
    assert forced.pairs == [(0, "a0", "b0"), (1, "a1", "b1")] and forced.left_out == ["a2", "a3"]
    assert not pair_by_seed(*subset[:1], subset[0], "unpaired").paired
    twice = pair_by_seed({"a0": 0, "x0": 0}, {"b0": 0, "b1": 1})
    assert not twice.paired and "reference ran seed(s) 0 more than once" in twice.reason
    assert "have no integer system.seed" in pair_by_seed({"a": None, "b": 1}, {"c": 0, "d": 1}).reason
    with pytest.raises(PairingError, match="more than once"):
        pair_by_seed({"a0": 0, "x0": 0}, {"b0": 0}, "paired")
    with pytest.raises(PairingError, match="share 1 seed"):
        pair_by_seed({"a0": 0, "a1": 1}, {"b0": 0, "b5": 5}, "paired")
    assert seed_list([3, 0, 1, 2, 7, 9, 10]) == "0-3, 7, 9-10"
    assert set(compare_cmd.PAIRING_CHOICES) == set(PAIRING_MODES)  # the CLI's copy of the modes


def test_auto_pairing_keeps_a_rank_test_that_pairs_could_not_pass():
    """The design decides, never the data: the signed-rank test needs 6 pairs to reach a
    two-sided 0.05 (smallest p 2/64) and 5 one-sided (1/32)."""
    def seeds(n: int) -> dict[str, int]:
        return {f"r{i}": i for i in range(n)}

    for n, two_sided, paired in ((5, True, False), (6, True, True), (4, False, False), (5, False, True)):
        got = pair_for_test(seeds(n), seeds(n), "auto", test="mannwhitney", two_sided=two_sided, alpha=0.05)
        assert got.paired is paired, (n, two_sided)
    assert pair_for_test(seeds(3), seeds(3), "auto", test="welch", two_sided=True, alpha=0.05).paired
    assert pair_for_test(seeds(3), seeds(3), "paired", test="mannwhitney", two_sided=True, alpha=0.05).paired


def test_compare_pairs_runs_of_the_same_seeds(tmp_path: Path, capsys):
    """End to end on run directories: the same small drop on every seed is found paired and
    missed unpaired; the report states the test and the pairing."""
    reference = write_side(tmp_path, "ref", [1.0, 1.05, 0.95, 1.02])
    # Seeds 0-3 again (the synthetic noise follows the seed), 3% lower with a little run noise.
    candidate = write_side(tmp_path, "cand", [0.97, 1.02, 0.93, 0.99])
    assert heartgrid("compare", *candidate, "--vs", *reference, "--out", tmp_path / "paired") == 0
    text = capsys.readouterr().out
    assert "the paired t-test on the per-seed differences candidate - reference (two-sided)" in text
    assert "runs paired by seed (system.seed in each run's config.json): 4 pairs, seeds 0-3" in text
    assert "candidate is worse than reference on final env_agent/heart.get" in text
    assert "smallest detectable difference (power 0.8, alpha 0.025 = 0.05 / 2 tests" in text
    assert re.search(r"  final env_agent/heart.get: [0-9.]+ \(d_z=2\.7\) at n=4 pairs", text)
    one = ("--metric", "final:env_agent/heart.get", "--out", tmp_path / "one")
    assert heartgrid("compare", *candidate, "--vs", *reference, *one) == 0
    assert "alpha 0.05 = 0.05 / 1 test, Holm's first step" in capsys.readouterr().out
    report = json.loads((tmp_path / "paired" / "report.json").read_text())
    assert report["settings"]["test"] == "paired t-test" and report["settings"]["pairing"]["paired"] is True
    hearts = report["metrics"]["final:env_agent/heart.get:higher"]
    assert hearts["pairs"][0] == {"seed": 0, "reference": "ref0", "candidate": "cand0"}
    assert hearts["effect_size_name"] == "d_z" and hearts["hedges_g"] > -1
    assert hearts["smallest_detectable"]["effect"] == "d_z"
    assert "runs paired by seed" in (tmp_path / "paired" / "report.html").read_text()

    assert heartgrid("compare", *candidate, "--vs", *reference, "--pairing", "unpaired",
                     "--out", tmp_path / "unpaired") == 0
    text = capsys.readouterr().out
    assert "Hedges' g and Welch's t-test (two-sided)" in text and "runs unpaired: --pairing unpaired" in text
    assert "no detectable difference between candidate and reference on final env_agent/heart.get" in text
    unpaired = json.loads((tmp_path / "unpaired" / "report.json").read_text())
    u_mde = unpaired["metrics"]["final:env_agent/heart.get:higher"]["smallest_detectable"]["difference"]
    p_mde = hearts["smallest_detectable"]["difference"]
    assert u_mde > 5 * p_mde  # the seeds' shared noise is what the unpaired test must overcome

    # The rank test's paired counterpart cannot reject with 4 pairs: auto keeps Mann-Whitney.
    assert heartgrid("compare", *candidate, "--vs", *reference, "--test", "mannwhitney",
                     "--out", tmp_path / "rank") == 0
    text = capsys.readouterr().out
    assert "Cliff's delta and Mann-Whitney U test (two-sided)" in text
    assert ("runs unpaired: the sides ran the same seeds, but with 4 pairs no outcome of the Wilcoxon "
            "signed-rank test reaches p < 0.05 (smallest 0.125)") in text
    assert heartgrid("compare", *candidate, "--vs", *reference, "--test", "mannwhitney", "--pairing", "paired",
                     "--out", tmp_path / "rank-paired") == 0
    text = capsys.readouterr().out
    assert "Wilcoxon signed-rank test on the per-seed differences" in text
    assert ("final env_agent/heart.get: none: with 4 pairs the exact Wilcoxon signed-rank test's smallest "
            "p-value is 0.125, not below 0.025; add seeds or choose --test welch") in text
    others = write_side(tmp_path, "other", [0.97, 1.02], first_seed=7)
    assert heartgrid("compare", *others, "--vs", *reference, "--pairing", "paired") == 2
    assert "cannot pair the runs by seed: the sides share 0 seed(s)" in capsys.readouterr().err
