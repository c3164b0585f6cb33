"""Eval-suite score tables compared per simulation and overall (paired by seed), stored in
baselines and guarded by `regress`; and `regress` pairing new runs with a baseline's seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from compare_synth import heartgrid, write_side

from heartgrid.compare.baseline import load_baseline, save_baseline
from heartgrid.compare.metric_spec import parse_metrics
from heartgrid.compare.regress import format_result, regress
from heartgrid.compare.runs import CompareError
from heartgrid.compare.scores import (
    OVERALL,
    compare_score_tables,
    score_table_from_json,
    score_table_to_json,
)
from heartgrid.compare.stats import NO_DIFFERENCE, NOT_WORSE, WORSE

SIMULATIONS = ("arena", "maze", "corridor")
SEEDS = range(6)


def _table(seed_luck: dict[int, float], shift: dict[str, float], noise: float, seed: int) -> dict:
    """Scores of (simulation, training seed): a seed's luck shared by its simulations and by
    both sides (common random numbers), a per-simulation shift, and run noise."""
    rng = np.random.default_rng(seed)
    base = {"arena": 1.0, "maze": 0.5, "corridor": 2.0}
    return {(sim, s): base[sim] + seed_luck[s] + shift.get(sim, 0.0) + noise * rng.standard_normal()
            for sim in SIMULATIONS for s in SEEDS}


@pytest.fixture
def luck() -> dict[int, float]:
    rng = np.random.default_rng(0)
    return {s: float(rng.normal(0.0, 0.5)) for s in SEEDS}


def test_paired_score_tables_find_a_drop_in_one_simulation(luck):
    reference = _table(luck, {}, 0.02, seed=1)
    candidate = _table(luck, {"maze": -0.1}, 0.02, seed=2)
    result = compare_score_tables(reference, candidate, alternative="worse")
    assert result.pairing.paired and [s for s, _, _ in result.pairing.pairs] == list(SEEDS)
    assert set(result.simulations) == set(SIMULATIONS) and result.missing == []
    assert result.simulations["maze"].verdict == WORSE
    assert result.simulations["maze"].test == "paired t-test"
    assert result.simulations["maze"].difference == pytest.approx(-0.1, abs=0.03)
    assert result.simulations["arena"].verdict == NOT_WORSE
    assert result.overall.difference == pytest.approx(-0.1 / 3, abs=0.02)
    # One Holm family: the overall score and the three simulations.
    assert {t.family for t in result.tests().values()} == {4}
    assert list(result.tests()) == [OVERALL, *sorted(SIMULATIONS)]

    # The same tables unpaired: the seeds' luck (sd 0.5) swamps a drop of 0.1.
    unpaired = compare_score_tables(reference, candidate, alternative="worse", pairing="unpaired")
    assert not unpaired.pairing.paired and unpaired.simulations["maze"].verdict == NOT_WORSE
    assert unpaired.simulations["maze"].test == "Welch's t-test"
    assert unpaired.simulations["maze"].detectable.difference > 5 * result.simulations["maze"].detectable.difference


def test_score_tables_of_other_seeds_and_simulations(luck):
    reference = _table(luck, {}, 0.02, seed=1)
    candidate = {(sim, s + 10): v for (sim, s), v in _table(luck, {}, 0.02, seed=2).items() if sim != "corridor"}
    candidate[("new_task", 10)] = 1.0
    result = compare_score_tables(reference, candidate)
    assert not result.pairing.paired and "different seeds" in result.pairing.reason
    assert result.missing == ["corridor"]
    assert result.notes == ["simulation(s) new_task scored by the candidate only: not tested"]
    assert set(result.simulations) == {"arena", "maze"}
    assert result.overall.reference.n == 6 and result.overall.verdict == NO_DIFFERENCE
    # A seed missing a simulation is left out of the overall mean, not averaged over fewer.
    del reference[("maze", 5)]
    assert compare_score_tables(reference, candidate).overall.reference.n == 5
    with pytest.raises(CompareError, match="keys are"):
        compare_score_tables({("arena", "0"): 1.0}, candidate)  # type: ignore[dict-item]
    with pytest.raises(CompareError, match="not a finite number"):
        compare_score_tables({("arena", 0): float("nan")}, candidate)


def test_score_table_json_round_trip(luck):
    table = _table(luck, {}, 0.02, seed=1)
    nested = score_table_to_json(table)
    assert sorted(nested) == sorted(SIMULATIONS) and sorted(nested["arena"]) == [str(s) for s in SEEDS]
    assert score_table_from_json(json.loads(json.dumps(nested))) == table


# ---- baselines and regress ----------------------------------------------------------------


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, list[Path]]:
    return {
        "base": write_side(tmp_path / "base", "seed", [1.0, 1.05, 0.95, 1.02]),
        # The same seeds, 3% lower: a drop the seeds' spread hides unless runs are paired.
        "lower": write_side(tmp_path / "lower", "run", [0.97, 1.02, 0.93, 0.99]),
        "same": write_side(tmp_path / "same", "run", [1.0, 1.05, 0.95, 1.02]),
    }


def test_regress_pairs_new_runs_with_the_baselines_seeds(runs, tmp_path: Path, capsys):
    store = tmp_path / "store"
    assert heartgrid("baseline", "save", "small", *runs["base"], "--store", store) == 0
    assert [r["seed"] for r in load_baseline("small", store=store).info["runs"]] == [0, 1, 2, 3]
    assert heartgrid("regress", "small", *runs["lower"], "--store", store) == 1
    out = capsys.readouterr().out
    assert "runs paired by seed (system.seed in each run's config.json): 4 pairs, seeds 0-3" in out
    assert ("FAIL no guarded metric is significantly worse (one-sided paired t-test on the per-seed differences, "
            "alpha 0.05, Holm over 2)") in out
    assert heartgrid("regress", "small", *runs["lower"], "--store", store, "--pairing", "unpaired") == 0
    out = capsys.readouterr().out
    assert "PASS no guarded metric is significantly worse (one-sided Welch's t-test, alpha 0.05, Holm over 2)" in out
    assert heartgrid("regress", "small", *runs["same"], "--store", store) == 0


def test_a_baseline_stores_scores_and_regress_guards_them(runs, tmp_path: Path, luck):
    store = tmp_path / "store"
    seeds = range(4)
    base_scores = {(sim, s): v for (sim, s), v in _table(luck, {}, 0.02, seed=1).items() if s in seeds}
    specs = parse_metrics(None)
    baseline = save_baseline("scored", runs["base"], specs, store=store, scores=base_scores)
    assert baseline.info["format"] == 2 and baseline.scores == base_scores
    assert baseline.info["scores"]["values"]["arena"]["0"] == base_scores[("arena", 0)]

    # Unchanged runs whose scores are unchanged: four checks pass.
    same_scores = {k: v + 0.001 for k, v in base_scores.items()}
    result = regress(baseline, [str(p) for p in runs["same"]], scores=same_scores)
    assert result.passed and len(result.checks) == 4
    assert result.checks[3].name.startswith("no eval-suite score is significantly worse")
    # The score tests and the guarded metrics are one Holm family of 2 + 4 tests.
    assert {r.test.family for r in result.comparison.metrics.values()} == {6}
    assert "p-values Holm-adjusted over 6 tests (2 metric(s) and 4 eval-suite score(s))" in format_result(result)

    # The same runs, but the maze score dropped on every seed: the scores check fails.
    dropped = {k: v - (0.15 if k[0] == "maze" else 0.0) for k, v in same_scores.items()}
    result = regress(baseline, [str(p) for p in runs["same"]], scores=dropped)
    assert not result.passed and [c.passed for c in result.checks] == [True, True, True, False]
    assert result.scores.simulations["maze"].verdict == WORSE
    details = result.checks[3].details
    assert any(line.startswith("score maze: baseline") and line.endswith(": worse") for line in details)
    # A simulation the baseline scored and the new runs did not fails the check too.
    partial = {k: v for k, v in same_scores.items() if k[0] != "corridor"}
    result = regress(baseline, [str(p) for p in runs["same"]], scores=partial)
    assert not result.checks[3].passed and "score corridor: not scored by the new runs" in result.checks[3].details
    # Without new scores the check is not made, and a note says so.
    result = regress(baseline, [str(p) for p in runs["same"]])
    assert len(result.checks) == 3 and any("no scores of the new runs" in n for n in result.comparison.notes)

    with pytest.raises(CompareError, match="seed"):
        save_baseline("strangers", runs["base"], specs, store=store, scores={("arena", 9): 1.0})
