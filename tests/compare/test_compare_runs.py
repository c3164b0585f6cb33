"""Loading many runs' metrics with DuckDB: final values, curve averages, names, curves, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from heartgrid.compare.metric_spec import MetricSpec
from heartgrid.compare.runs import CompareError, RunSet, common_grid, on_grid

FINAL_REWARD = MetricSpec("final", "overview/reward", True)
AUC_REWARD = MetricSpec("auc", "overview/reward", True)
FINAL_HEARTS = MetricSpec("final", "env_agent/heart.get", True)
AUC_HEARTS = MetricSpec("auc", "env_agent/heart.get", True)


def _run(root: Path, name: str, lines: list[str], config: dict | None = None) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config or {"run": name}))
    (run / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    return run


@pytest.fixture
def two_runs(tmp_path: Path) -> RunSet:
    r1 = _run(tmp_path, "r1", [
        '{"metric/agent_step": 100, "overview/reward": 0.0, "env_agent/heart.get": 1}',
        '{"metric/agent_step": 200, "overview/reward": 1.0, "env_agent/heart.get": NaN}',
        '{"metric/agent_step": 400, "overview/reward": 0.5, "env_agent/heart.get": 3, "note": "text"}',
        '{"overview/reward": 9.0}',  # no agent step: cannot be placed on a curve, ignored
    ])
    r2 = _run(tmp_path, "r2", [
        '{"metric/agent_step": 100, "overview/reward": 5.0}',
        '{"metric/agent_step": 100, "overview/reward": 7.0}',  # re-logged step: the later line wins
    ])
    return RunSet.load([r1, r2])


def test_final_values_and_curve_averages(two_runs: RunSet):
    assert two_runs.labels == ["r1", "r2"]
    assert two_runs.values(FINAL_REWARD) == {"r1": 0.5, "r2": 7.0}
    # Trapezoids: 100 * (0 + 1) / 2 + 200 * (1 + 0.5) / 2 = 200 over 300 steps; a single point
    # is its own average.
    assert two_runs.values(AUC_REWARD) == {"r1": pytest.approx(2 / 3), "r2": 7.0}
    # NaN is "not logged": heart.get has points at 100 (1) and 400 (3) only; r2 never logs it.
    assert two_runs.values(FINAL_HEARTS) == {"r1": 3.0}
    assert two_runs.values(AUC_HEARTS) == {"r1": pytest.approx(2.0)}
    # late: the points in the last third of the span (steps 100-400: from 300 on) for hearts;
    # reward spans 100-400 in r1 (only step 400 counts) and one step in r2 (that point).
    assert two_runs.values(MetricSpec("late", "env_agent/heart.get", True)) == {"r1": 3.0}
    assert two_runs.values(MetricSpec("late", "overview/reward", True)) == {"r1": 0.5, "r2": 7.0}


def test_values_come_in_label_order_whatever_the_input_order(two_runs: RunSet):
    # The seeded bootstrap resamples by position: a report must not depend on argument order.
    reversed_runs = RunSet.load([two_runs.runs[1].path, two_runs.runs[0].path])
    assert list(reversed_runs.values(AUC_REWARD)) == ["r1", "r2"]
    assert list(reversed_runs.curve_points("overview/reward")) == ["r1", "r2"]


def test_metric_names_steps_and_finals(two_runs: RunSet):
    assert two_runs.metric_names() == {
        "r1": {"metric/agent_step", "overview/reward", "env_agent/heart.get"},
        "r2": {"metric/agent_step", "overview/reward"},
    }
    assert two_runs.step_range() == {"r1": (100.0, 400.0), "r2": (100.0, 100.0)}
    assert two_runs.final_values()["r1"] == {
        "metric/agent_step": 400.0, "overview/reward": 0.5, "env_agent/heart.get": 3.0
    }
    steps, values = two_runs.curve_points("overview/reward")["r1"]
    assert steps.tolist() == [100.0, 200.0, 400.0] and values.tolist() == [0.0, 1.0, 0.5]


def test_parquet_round_trip_gives_the_same_numbers(two_runs: RunSet, tmp_path: Path):
    two_runs.to_parquet(tmp_path / "points.parquet")
    again = RunSet.from_parquet(tmp_path / "points.parquet", two_runs.runs)
    for spec in (FINAL_REWARD, AUC_REWARD, FINAL_HEARTS, AUC_HEARTS):
        assert again.values(spec) == two_runs.values(spec)
    assert again.metric_names() == two_runs.metric_names()


def test_labels_stay_unique_when_directory_names_collide(tmp_path: Path):
    line = ['{"metric/agent_step": 1, "overview/reward": 1}']
    runs = RunSet.load([_run(tmp_path / "x", "seed0", line), _run(tmp_path / "y", "seed0", line)])
    assert runs.labels == ["x/seed0", "y/seed0"]
    assert runs.values(FINAL_REWARD) == {"x/seed0": 1.0, "y/seed0": 1.0}


def test_curves_on_a_common_grid():
    a = (np.array([0.0, 10.0]), np.array([0.0, 10.0]))
    b = (np.array([2.0, 12.0]), np.array([1.0, 1.0]))
    grid = common_grid([a, b], points=5)
    assert grid.tolist() == [2.0, 4.0, 6.0, 8.0, 10.0]  # the overlap of both ranges
    assert on_grid([a, b], grid).tolist() == [[2.0, 4.0, 6.0, 8.0, 10.0], [1.0] * 5]
    disjoint = common_grid([(np.array([0.0, 1.0]), a[1]), (np.array([5.0, 6.0]), a[1])], points=3)
    assert disjoint.tolist() == [0.0, 3.0, 6.0]


def test_errors_name_the_problem(tmp_path: Path):
    with pytest.raises(CompareError, match="not a directory"):
        RunSet.load([tmp_path / "nope"])
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(CompareError, match="no metrics.jsonl"):
        RunSet.load([tmp_path / "half"])
    broken = _run(tmp_path, "broken", ['{"metric/agent_step": 1}', '{"metric/agent_step": 2, "x"'])
    with pytest.raises(CompareError, match="Malformed JSON"):
        RunSet.load([broken])
    good = _run(tmp_path, "good", ['{"metric/agent_step": 1}'])
    with pytest.raises(CompareError, match="twice"):
        RunSet.load([good, good])
    with pytest.raises(CompareError, match="no run directories"):
        RunSet.load([])
