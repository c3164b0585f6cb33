"""Scores with 95% confidence intervals: per simulation, per category, overall.

Score of an episode: the simulation's metric averaged over the episode's agents (reward per
agent by default), divided by the simulation's reference when it has one (resolve.py,
references.py). Episodes are the independent units: agents of one episode share a map and
interact, so they are averaged first.

- Simulation score: the mean over its episodes, with a Student t interval, mean ± t(0.975,
  n−1)·s/√n. Why t and not a bootstrap: with the 8-16 episodes of a suite the bootstrap's
  percentile interval is too narrow (it ignores that s is estimated), and the t interval is
  exact for normal scores and robust for bounded ones at these n; it is also what the stats
  database's SQL views compute, so both agree to the last digit.
- Category score: the unweighted mean of its simulations' scores (each map counts the same,
  whatever its episode count). Overall: the unweighted mean of the category scores (a suite
  of 14 navigation maps and 4 arenas weighs navigation and arena equally).
- Their intervals: the simulations are independent, so the variance of a weighted mean of
  simulation means is Σ w²·s²/n; the interval uses t with Welch-Satterthwaite degrees of
  freedom (Σ w²s²/n)² / Σ (w²s²/n)²/(n−1).

A simulation with one episode has no interval (None), nor does any mean that includes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LEVEL = 0.95


@dataclass(frozen=True)
class Summary:
    mean: float
    low: float | None  # None: no interval (fewer than two episodes somewhere)
    high: float | None
    n: int  # episodes behind the number
    variance_of_mean: float | None = None  # s²/n (or Σ w²s²/n), for combining
    df: float | None = None

    def to_json(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "ci_low": self.low, "ci_high": self.high, "n": self.n}

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean


def t_quantile(df: float) -> float:
    # Imported here: scipy.stats takes ~1 s to import, and every `heartgrid` command (`train`,
    # each rank and each job of an A/B) would pay it at start-up for the few that score.
    from scipy import stats as scipy_stats

    return float(scipy_stats.t.ppf(0.5 + LEVEL / 2, df))


def t_interval(values: Sequence[float]) -> Summary:
    """Mean and 95% Student t interval of independent episode scores."""
    n = len(values)
    if n == 0:
        raise ValueError("no episodes to summarise")
    mean = math.fsum(values) / n
    if n < 2:
        return Summary(mean, None, None, n)
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    vom = var / n
    half = t_quantile(n - 1) * math.sqrt(vom)
    return Summary(mean, mean - half, mean + half, n, vom, float(n - 1))


def weighted_mean(parts: Sequence[Summary], weights: Sequence[float] | None = None) -> Summary:
    """Σ w·mean of independent summaries (default: equal weights summing to 1), with a
    Welch-Satterthwaite t interval."""
    if not parts:
        raise ValueError("nothing to average")
    if weights is None:
        weights = [1.0 / len(parts)] * len(parts)
    mean = math.fsum(w * p.mean for w, p in zip(weights, parts))
    n = sum(p.n for p in parts)
    if any(p.variance_of_mean is None or p.df is None for p in parts):
        return Summary(mean, None, None, n)
    terms = [w * w * p.variance_of_mean for w, p in zip(weights, parts)]  # type: ignore[operator]
    vom = math.fsum(terms)
    if vom == 0:
        return Summary(mean, mean, mean, n, 0.0, math.inf)
    df = vom * vom / math.fsum(t * t / p.df for t, p in zip(terms, parts) if t > 0)  # type: ignore[operator]
    half = t_quantile(df) * math.sqrt(vom)
    return Summary(mean, mean - half, mean + half, n, vom, df)


def mean_of_means(groups: dict[str, list[Summary]]) -> Summary:
    """Unweighted mean over groups of the unweighted mean within each group: the overall score
    from per-category lists of simulation summaries (each simulation weighs 1/(C·k_c))."""
    parts, weights = [], []
    for sims in groups.values():
        for sim in sims:
            parts.append(sim)
            weights.append(1.0 / (len(groups) * len(sims)))
    return weighted_mean(parts, weights)
