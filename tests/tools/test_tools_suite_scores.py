"""Guarded suite scores (#11): `baseline save --suite` stores the runs' scores on a suite with
its maps' hashes; `regress` scores the new runs on the same suite, seeds and maps, pairs them by
training seed, and fails when they are significantly worse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import heartgrid.evaluation as evaluation
from heartgrid.config.overrides import apply_overrides
from heartgrid.recipes import build_config
from heartgrid.tools.cli import main
from heartgrid.trainer.run import train

SUITE = {"name": "quick", "simulations": [
    {"category": "nav", "name": "near", "recipe": "navigation_maze", "max_steps": 60, "episodes": 4,
     "generator": {"kind": "scatter", "width": 9, "height": 9, "altars": 3, "mean_distance": 2}},
    {"category": "nav", "name": "open", "recipe": "navigation_maze", "max_steps": 60, "episodes": 4,
     "generator": {"kind": "scatter", "width": 7, "height": 7, "altars": 4, "mean_distance": 2}},
]}
SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, list[str]]:
    """Four seeds of one tiny navigation config (one epoch each), and the suite file."""
    root = tmp_path_factory.mktemp("scored")
    base = build_config("navigation", [
        "system.device=cpu", "system.torch_threads=1", "trainer.num_envs=1", "trainer.bptt_horizon=16",
        "trainer.batch_size=64", "trainer.minibatch_size=64", "trainer.update_epochs=1",
        "trainer.total_timesteps=64", "policy.hidden_size=16", "policy.lstm_layers=1",
        "logging.tensorboard=false", "logging.console=none",
    ])
    dirs = [str(train(apply_overrides(base, {"data_dir": str(root), "run": f"s{seed}", "system.seed": seed})))
            for seed in SEEDS]
    (root / "quick.json").write_text(json.dumps(SUITE))
    return root, dirs


def scaled_candidates(monkeypatch, candidates: list[str], factor: float) -> None:
    """The real evaluation, with the candidates' episode scores multiplied: a planted loss of
    skill that the engine cannot be asked to produce in a one-epoch run."""
    real = evaluation.evaluate_suite

    def evaluate(players, *args, **kwargs):
        card = real(players, *args, **kwargs)
        worse = {p.info.policy_id for p in players if p.info.uri in candidates}
        for result in card.results:
            if result.policy_id in worse:
                for episode in result.episodes:
                    episode.score *= factor
        return card

    monkeypatch.setattr(evaluation, "evaluate_suite", evaluate)


def test_regress_guards_suite_scores_on_the_same_maps(runs, tmp_path, monkeypatch, capsys):
    root, dirs = runs
    store = str(tmp_path / "store")
    suite = str(root / "quick.json")
    assert main(["baseline", "save", "base", *dirs, "--suite", suite, "--suite-device", "cpu",
                 "--store", store, "--metric", "losses/entropy:higher"]) == 0
    saved = json.loads((Path(store) / "base" / "baseline.json").read_text())["scores"]
    assert saved["source"]["name"] == "quick" and set(saved["source"]["simulations"]) == {"nav/near", "nav/open"}
    assert len(saved["values"]) == 2 and all(len(seeds) == 4 for seeds in saved["values"].values())
    capsys.readouterr()

    # The same runs again: the scores agree seed for seed.
    assert main(["regress", "base", *dirs, "--store", store, "--suite-device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "PASS no eval-suite score is significantly worse" in out
    assert "runs paired by training seed (the score tables' seeds): 4 pairs, seeds 0-3" in out
    assert "score nav/near: baseline" in out

    # The same runs playing far worse on the same maps: a regression, named by its scores.
    scaled_candidates(monkeypatch, dirs, 0.0)
    assert main(["regress", "base", *dirs, "--store", store, "--suite-device", "cpu"]) == 1
    assert "FAIL no eval-suite score is significantly worse" in capsys.readouterr().out


def test_a_suite_whose_maps_changed_is_refused(runs, tmp_path, capsys):
    root, dirs = runs
    store = str(tmp_path / "store")
    suite = root / "changing.json"
    suite.write_text(json.dumps(SUITE))
    assert main(["baseline", "save", "base", *dirs[:2], "--suite", str(suite), "--suite-device", "cpu",
                 "--store", store, "--metric", "losses/entropy:higher"]) == 0
    changed = json.loads(json.dumps(SUITE))
    changed["simulations"][0]["generator"]["altars"] = 2
    suite.write_text(json.dumps(changed))
    capsys.readouterr()
    assert main(["regress", "base", *dirs[:2], "--store", store, "--suite-device", "cpu"]) == 2
    assert "no longer plays the maps the baseline was scored on (changed: nav/near)" in capsys.readouterr().err
