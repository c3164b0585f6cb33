"""Eval-suite scores of runs, for `baseline save --suite` and `regress` (#11: guarded scores).

Each run's latest checkpoint plays every simulation of the suite on the same seeds, so every run
meets the same maps; a run's score on a simulation is the mean over its episodes, keyed by the
run's training seed (the unit `heartgrid.compare.scores` pairs and tests). The simulations'
config hashes travel with a baseline's scores: new runs are scored only on the same maps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heartgrid.compare.runs import CompareError
from heartgrid.compare.scores import ScoreTable


def score_runs(
    run_dirs: list[str], suite: str, *, episodes: int | None, device: str
) -> tuple[ScoreTable, dict[str, Any]]:
    """({(simulation key, training seed): mean score}, the source: suite, episodes, hashes)."""
    from heartgrid.evaluation import evaluate_suite, policy_from_uri
    from heartgrid.evaluation.resolve import SuiteError
    from heartgrid.rundir import read_run_config

    seeds = {run: read_run_config(Path(run)).system.seed for run in run_dirs}
    by_seed: dict[int, list[str]] = {}
    for run, seed in seeds.items():
        by_seed.setdefault(seed, []).append(run)
    shared = {seed: runs for seed, runs in by_seed.items() if len(runs) > 1}
    if shared:  # the score table is keyed by training seed: such runs would overwrite each other
        seed, runs = next(iter(shared.items()))
        raise CompareError(f"runs {', '.join(runs)} were all trained with system.seed={seed}; suite scores "
                           "are kept and paired by training seed, so give each run its own seed")
    players = [policy_from_uri(run, label=f"{Path(run).name}") for run in run_dirs]
    try:
        card = evaluate_suite(players, suite, episodes=episodes, device=device)
    except SuiteError as e:
        raise CompareError(str(e)) from None
    table: dict[tuple[str, int], float] = {}
    for run, player in zip(run_dirs, players):
        for simulation in card.simulations:
            result = card.result(player.info.policy_id, simulation.key)
            if result is not None:
                table[(simulation.key, seeds[run])] = sum(e.score for e in result.episodes) / len(result.episodes)
    # The suite as it was named (a file as an absolute path), so that regress finds it again.
    named = str(Path(suite).resolve()) if Path(suite).is_file() else suite
    source = {"suite": named, "name": card.suite, "episodes": episodes,
              "simulations": {s.key: s.config_hash for s in card.simulations}}
    return table, source


def check_same_maps(baseline_source: dict[str, Any], source: dict[str, Any]) -> None:
    """Refuse scores made on other maps than the baseline's (the suite changed since)."""
    ours, theirs = source["simulations"], baseline_source["simulations"]
    changed = sorted(k for k in theirs if k in ours and ours[k] != theirs[k])
    if changed:
        raise CompareError(
            f"the suite {source['name']!r} no longer plays the maps the baseline was scored on "
            f"(changed: {', '.join(changed)}); score the baseline again with `heartgrid baseline save "
            "... --suite ... --force`")
