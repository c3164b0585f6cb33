"""Eval-suite scores of two sets of runs, compared per simulation and overall, paired by seed.

An evaluation suite plays each run's policy on named simulations (tasks); its scorecard gives a
score per simulation. This module compares two sides' scorecards with the machinery of metric
comparisons, without knowing where they come from (`heartgrid.evaluation` is a sibling layer
and is not imported): a side is a *score table*

    {(simulation, seed): score}

where `seed` is the training seed of the run that was evaluated and `score` its score on that
simulation, averaged over the episodes played. The training seed is the unit of replication:
the episodes of one policy are many looks at one trained run, not independent samples of what
training does, so testing episodes as if they were runs would overstate the evidence.

Pairing follows `heartgrid.compare.pairing` with the seeds of the tables (default `auto`: paired
when both sides scored the same seeds). The family of tests is the overall score, the mean of a
seed's scores over the simulations both sides have (seeds scored on all of them), and each such
simulation; p-values are Holm-adjusted over that family (`heartgrid regress` re-adjusts them
together with its guarded metrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heartgrid.compare.pairing import Pairing, PairingMode, pair_for_test
from heartgrid.compare.runs import CompareError
from heartgrid.compare.stats import Alternative, MetricTest, TestName, compare_samples

ScoreTable = Mapping[tuple[str, int], float]
OVERALL = "overall"
"""The key of the overall test in `ScoreComparison.tests()` (a simulation may not use it)."""


@dataclass(frozen=True)
class ScoreComparison:
    overall: MetricTest
    """The per-seed mean over the simulations both sides scored."""
    simulations: dict[str, MetricTest]
    pairing: Pairing
    missing: list[str] = field(default_factory=list)
    """Simulations the reference scored and the candidate did not (not tested)."""
    notes: list[str] = field(default_factory=list)

    def tests(self) -> dict[str, MetricTest]:
        return {OVERALL: self.overall, **self.simulations}


def _seed_label(seed: int) -> str:
    return f"seed {seed}"


def score_table_to_json(table: ScoreTable) -> dict[str, dict[str, float]]:
    """{simulation: {seed as text: score}}: JSON objects need text keys."""
    nested: dict[str, dict[str, float]] = {}
    for (simulation, seed), score in sorted(table.items()):
        nested.setdefault(simulation, {})[str(seed)] = float(score)
    return nested


def score_table_from_json(nested: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, int], float]:
    return {(simulation, int(seed)): float(score) for simulation, by_seed in nested.items()
            for seed, score in by_seed.items()}


def check_score_table(table: ScoreTable, what: str) -> None:
    for key, score in table.items():
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str) and isinstance(key[1], int)):
            raise CompareError(f"{what}: score table keys are (simulation, seed), got {key!r}")
        if key[0] == OVERALL:
            raise CompareError(f"{what}: a simulation may not be named {OVERALL!r}")
        if not np.isfinite(score):
            raise CompareError(f"{what}: the score of {key[0]!r} seed {key[1]} is {score}, not a finite number")


def _seed_means(table: ScoreTable, simulations: list[str]) -> dict[int, float]:
    """seed -> its mean score over `simulations`, for the seeds scored on all of them."""
    if not simulations:
        return {}
    seeds = {seed for _, seed in table}
    return {
        seed: float(np.mean([table[(s, seed)] for s in simulations]))
        for seed in sorted(seeds)
        if all((s, seed) in table for s in simulations)
    }


def compare_score_tables(
    reference: ScoreTable,
    candidate: ScoreTable,
    *,
    test: TestName = "welch",
    pairing: PairingMode = "auto",
    alternative: Alternative = "two-sided",
    alpha: float = 0.05,
    higher_is_better: bool = True,
    confidence: float = 0.95,
    seed: int = 0,
) -> ScoreComparison:
    """Test the overall score and each simulation's score, candidate relative to reference."""
    check_score_table(reference, "reference scores")
    check_score_table(candidate, "candidate scores")
    matched = pair_for_test(
        {_seed_label(s): s for _, s in reference}, {_seed_label(s): s for _, s in candidate}, pairing,
        test=test, two_sided=alternative == "two-sided", alpha=alpha, by="training seed (the score tables' seeds)",
    )
    sims_r = sorted({s for s, _ in reference})
    sims_c = {s for s, _ in candidate}
    common = [s for s in sims_r if s in sims_c]
    notes = []
    extra = sorted(sims_c - set(sims_r))
    if extra:
        notes.append(f"simulation(s) {', '.join(extra)} scored by the candidate only: not tested")

    # One {seed: score} per side and test: each simulation, and the seeds' means over all.
    columns: dict[str, tuple[dict[int, float], dict[int, float]]] = {
        OVERALL: (_seed_means(reference, common), _seed_means(candidate, common))
    }
    for simulation in common:
        columns[simulation] = (
            {s: v for (sim, s), v in reference.items() if sim == simulation},
            {s: v for (sim, s), v in candidate.items() if sim == simulation},
        )
    samples: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}
    for key, (ref, cand) in columns.items():
        if matched.paired:
            seeds = [s for s, _, _ in matched.pairs if s in ref and s in cand]  # aligned by seed
            r, c = [ref[s] for s in seeds], [cand[s] for s in seeds]
        else:
            r, c = [ref[s] for s in sorted(ref)], [cand[s] for s in sorted(cand)]
        samples[key] = (np.array(r, dtype=np.float64), np.array(c, dtype=np.float64), higher_is_better)
    tests = compare_samples(samples, test=test, paired=matched.paired, alternative=alternative, alpha=alpha,
                            confidence=confidence, seed=seed)
    overall = tests.pop(OVERALL)
    return ScoreComparison(overall, tests, matched, missing=sorted(set(sims_r) - sims_c), notes=notes)
