"""Evaluation on a suite while training (evaluation.suite, evaluation.interval): the scores join
the metrics, the stats database and the checkpoint manifests, and training is unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from heartgrid.checkpoint import CheckpointError, CheckpointManager
from heartgrid.checkpoint.manifest import MANIFEST
from heartgrid.checkpoint.uri import resolve_policy_uri
from heartgrid.config.overrides import apply_overrides
from heartgrid.evaluation.stats_db import reading
from heartgrid.recipes import build_config
from heartgrid.tools.cli import main
from heartgrid.trainer.logger import read_metrics
from heartgrid.trainer.run import train

EPOCH_STEPS = 128  # 1 env x 4 agents x bptt 16 x 2 passes


def tiny_navigation(data_dir: Path, run: str, **overrides):
    config = build_config("navigation", [
        "system.device=cpu", "system.torch_threads=1", "trainer.num_envs=1", "trainer.bptt_horizon=16",
        f"trainer.batch_size={EPOCH_STEPS}", "trainer.minibatch_size=64", "trainer.update_epochs=1",
        f"trainer.total_timesteps={EPOCH_STEPS * 4}", "trainer.checkpoint_interval=2",
        "policy.hidden_size=16", "policy.lstm_layers=1", "logging.tensorboard=false",
    ])
    values = {"data_dir": str(data_dir), "run": run, "logging.console": "none", **overrides}
    return apply_overrides(config, values)


# A user suite from a file, small enough for a test: two generated rooms, short episodes.
SUITE = {"name": "quick", "simulations": [
    {"category": "nav", "name": "near", "recipe": "navigation_maze", "max_steps": 40, "episodes": 2,
     "generator": {"kind": "scatter", "width": 9, "height": 9, "altars": 2, "mean_distance": 3}},
    {"category": "nav", "name": "maze", "recipe": "navigation_maze", "max_steps": 40, "episodes": 2,
     "generator": {"kind": "maze", "width": 9, "height": 9, "altars": 2}},
]}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("evaluated")
    suite = data_dir / "quick.json"
    suite.write_text(json.dumps(SUITE))
    return train(tiny_navigation(data_dir, "with", **{"evaluation.suite": str(suite), "evaluation.interval": 2}))


def test_scores_are_logged_at_the_interval_and_kept_in_manifests_and_the_database(evaluated):
    records = {int(r["metric/epoch"]): r for r in read_metrics(evaluated)}
    assert sorted(records) == [1, 2, 3, 4]
    for epoch in (2, 4):
        assert 0.0 <= records[epoch]["overview/quick_score"] <= 1.0
        assert 0.0 <= records[epoch]["overview/nav_score"] <= 1.0
        assert "evaluator/quick/nav/near/reward" in records[epoch]
        assert "evaluator/quick/nav/maze/score" in records[epoch]
    assert not any(k.startswith("evaluator/") for k in records[1])
    for checkpoint in CheckpointManager(evaluated).checkpoints():
        scores = json.loads((checkpoint / MANIFEST).read_text())["scores"]
        assert set(scores) == {"overview/quick_score", "overview/nav_score"}
    with reading(evaluated / "stats.duckdb") as db:
        (policies,) = db.execute("SELECT count(DISTINCT policy_id) FROM episodes").fetchone()
    assert policies == 2  # the policy at epoch 2 and at epoch 4


def test_evaluation_leaves_training_as_it_was(evaluated, tmp_path):
    """Evaluating draws nothing from the trainer's generators: the same weights without it."""
    plain = train(tiny_navigation(tmp_path, "without"))
    with_eval, without = (CheckpointManager(d).load_latest().policy_weights for d in (evaluated, plain))
    for name in with_eval:
        assert torch.equal(with_eval[name], without[name]), name


def test_a_uri_picks_the_best_checkpoint_by_a_score(tmp_path, evaluated):
    run = tmp_path / "copy"
    shutil.copytree(evaluated, run)
    for checkpoint, score in zip(CheckpointManager(run).checkpoints(), (0.9, 0.1)):
        manifest = json.loads((checkpoint / MANIFEST).read_text())
        manifest["scores"]["overview/quick_score"] = score
        (checkpoint / MANIFEST).write_text(json.dumps(manifest))
    assert resolve_policy_uri(f"{run}?best=overview/quick_score").name == "epoch_000002"
    with pytest.raises(CheckpointError, match="they hold: overview/nav_score, overview/quick_score"):
        resolve_policy_uri(f"{run}?best=overview/arena_score")


def test_an_unknown_suite_stops_the_run_before_it_trains(tmp_path, capsys):
    code = main(["train", "navigation", f"data_dir={tmp_path}", "run=bad", "system.device=cpu",
                 "evaluation.suite=navigaton", "evaluation.interval=1"])
    assert code == 2
    assert "did you mean 'navigation'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_a_suite_the_policy_cannot_play_stops_the_run_before_it_trains(tmp_path, capsys):
    """small_cardinal's conv policy sees 7x7 windows; the procgen suite's games show 11x11.
    Found at the first evaluation, it ended the run with a traceback, and evaluation.* could
    not change on resume."""
    code = main(["train", "small_cardinal", f"data_dir={tmp_path}", "run=bad", "system.device=cpu",
                 "evaluation.suite=procgen", "evaluation.interval=5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "evaluation.suite procgen: simulation procgen/" in err
    assert "was built for 7x7 observations, got 11x11" in err
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("recipe, suite", [("arena_basic_easy_shaped", "arena"), ("navigation", "navigation")])
def test_gpu_recipes_evaluate_while_training_and_cpu_recipes_do_not(recipe, suite):
    gpu, cpu = (build_config(recipe, [], default_device=d).evaluation for d in ("cuda", "cpu"))
    assert (gpu.suite, gpu.interval > 0) == (suite, True)
    assert cpu.interval == 0


def test_a_resumed_run_keeps_one_evaluation_per_epoch(tmp_path):
    """Killed after evaluating epoch 3 but before the checkpoint of epoch 4: the resumed run
    evaluates epochs 3 and 4 again, and the stats database keeps those, not the interrupted
    attempt's (which metrics.jsonl drops too). On a GPU those would be other policies."""
    suite = tmp_path / "quick.json"
    suite.write_text(json.dumps(SUITE))
    config = tiny_navigation(tmp_path, "resumed", **{"evaluation.suite": str(suite), "evaluation.interval": 1})
    run = train(config)
    shutil.rmtree(CheckpointManager(run).checkpoints()[-1])  # the checkpoint of epoch 4
    with reading(run / "stats.duckdb") as db:
        before = db.execute("SELECT max(created_at) FROM evaluations").fetchone()[0]
    train(config)
    with reading(run / "stats.duckdb") as db:
        rows = db.execute("SELECT p.epoch, count(DISTINCT v.eval_id), min(v.created_at) FROM evaluations v "
                          "JOIN episodes e USING (eval_id) JOIN policies p USING (policy_id) "
                          "GROUP BY p.epoch ORDER BY p.epoch").fetchall()
        (evaluations,) = db.execute("SELECT count(*) FROM evaluations").fetchone()
    assert [(epoch, n) for epoch, n, _ in rows] == [(1, 1), (2, 1), (3, 1), (4, 1)]
    assert evaluations == 4
    assert all((created > before) == (epoch > 2) for epoch, _, created in rows)
    assert "evaluations of epochs after 2 from before this start are retracted" in (run / "log.txt").read_text()
