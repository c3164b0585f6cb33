"""Baselines and `heartgrid regress` on synthetic runs: each way to fail, and passing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from compare_synth import heartgrid, write_side

from heartgrid.checkpoint import durable
from heartgrid.compare.baseline import load_baseline, store_dir

BASE_PLATEAUS = [1.0, 1.05, 0.95]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store holding baseline `small`: 3 seeds of the unchanged recipe."""
    runs = write_side(tmp_path / "base", "seed", BASE_PLATEAUS)
    store = tmp_path / "store"
    assert heartgrid("baseline", "save", "small", *runs, "--store", store) == 0
    return store


def test_saved_baseline_holds_curves_statistics_config_and_names(store: Path, capsys):
    baseline = load_baseline("small", store=store)
    assert {p.name for p in baseline.path.iterdir()} == {"baseline.json", "config.json", "curves.parquet"}
    assert baseline.config["recipe"] == "small_easy_shaped"
    assert baseline.metric_names == sorted([
        "metric/agent_step", "metric/epoch", "overview/reward", "overview/sps",
        "env_agent/heart.get", "env_agent/action.move.failed", "losses/policy_loss",
    ])
    stats = baseline.info["statistics"]["final:env_agent/heart.get:higher"]
    assert stats["n"] == 3 and sorted(stats["values"]) == ["seed0", "seed1", "seed2"]
    assert stats["ci"][0] < stats["mean"] < stats["ci"][1]
    assert set(baseline.info["final"]["seed0"]) == set(baseline.metric_names)
    assert baseline.runset().values(baseline.guarded[0]) == stats["values"]

    assert heartgrid("baseline", "list", "--store", store) == 0
    assert heartgrid("baseline", "show", "small", "--store", store) == 0
    out = capsys.readouterr().out
    assert "small" in out and "3 runs" in out
    assert "final env_agent/heart.get (higher is better): mean" in out


def test_unchanged_recipe_passes(store: Path, tmp_path: Path, capsys):
    new = write_side(tmp_path / "new", "run", [1.02, 0.97, 1.01], first_seed=10)
    assert heartgrid("regress", "small", *new, "--store", store) == 0
    out = capsys.readouterr().out
    # Different run names, directories and seeds are run identity, not a config change.
    assert "PASS config equals the baseline's beyond run identity" in out
    assert "PASS every metric of the baseline is logged (7 metrics)" in out
    assert "PASS no guarded metric is significantly worse" in out
    assert out.rstrip().endswith("OK: no regression detected")


def test_config_change_fails_the_config_check(store: Path, tmp_path: Path, capsys):
    new = write_side(tmp_path / "new", "run", [1.0, 1.0, 1.0], overrides=("game.actions.move_8way.enabled=true",))
    assert heartgrid("regress", "small", *new, "--store", store) == 1
    out = capsys.readouterr().out
    assert "FAIL config equals the baseline's beyond run identity" in out
    assert "game.actions.move_8way.enabled: baseline False -> True in run(s) run0, run1, run2" in out
    assert "REGRESSION: 1 of 3 checks failed" in out
    # An intended change can be allowed; then only the outcome is judged.
    assert heartgrid("regress", "small", *new, "--store", store, "--allow-config", "game.actions.move_8way") == 0


def test_missing_metric_fails_the_metric_check(store: Path, tmp_path: Path, capsys):
    new = write_side(tmp_path / "new", "run", [1.0, 1.0, 1.0], drop=("overview/sps",))
    assert heartgrid("regress", "small", *new, "--store", store) == 1
    out = capsys.readouterr().out
    assert "FAIL every metric of the baseline is logged (7 metrics)\n" \
        "  overview/sps: not logged by run(s) run0, run1, run2" in out


def test_missing_guarded_metric_is_reported_not_tested(store: Path, tmp_path: Path, capsys):
    new = write_side(tmp_path / "new", "run", [1.0, 1.0, 1.0], drop=("overview/reward",))
    assert heartgrid("regress", "small", *new, "--store", store) == 1
    out = capsys.readouterr().out
    assert "overview/reward: not logged by run(s) run0, run1, run2" in out
    assert "auc overview/reward: not tested (logged by 0 new run(s))" in out


def test_worse_outcome_fails_the_statistics(store: Path, tmp_path: Path, capsys):
    new = write_side(tmp_path / "new", "run", [0.7, 0.75, 0.72], first_seed=20)
    out_dir = tmp_path / "report"
    assert heartgrid("regress", "small", *new, "--store", store, "--out", out_dir) == 1
    out = capsys.readouterr().out
    assert "PASS config equals" in out and "PASS every metric" in out
    assert "FAIL no guarded metric is significantly worse (one-sided Welch's t-test, alpha 0.05, Holm over 2)" in out
    assert "final env_agent/heart.get: baseline 1.956 -> new 1.433, p(Holm) 0.0036: worse" in out
    report = json.loads((out_dir / "report.json").read_text())
    assert report["passed"] is False
    assert [c["passed"] for c in report["checks"]] == [True, True, False]
    assert report["metrics"]["auc:overview/reward:higher"]["verdict"] == "worse"


def test_direction_of_a_lower_is_better_metric(store: Path, tmp_path: Path):
    # action.move.failed = 5 - reward in the synthetic runs: worse runs fail more moves.
    worse = write_side(tmp_path / "worse", "run", [0.7, 0.75, 0.72], first_seed=20)
    better = write_side(tmp_path / "better", "run", [1.3, 1.35, 1.32], first_seed=30)
    metric = "env_agent/action.move.failed"
    assert heartgrid("regress", "small", *worse, "--store", store, "--metric", metric) == 1
    assert heartgrid("regress", "small", *better, "--store", store, "--metric", metric) == 0


def test_store_location_and_bad_input(store: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("HEARTGRID_BASELINES", str(store))
    assert store_dir() == store
    assert store_dir(tmp_path / "other") == tmp_path / "other"
    monkeypatch.delenv("HEARTGRID_BASELINES")
    assert store_dir() == Path.home() / ".heartgrid" / "baselines"
    monkeypatch.setenv("HEARTGRID_BASELINES", str(store))

    runs = [tmp_path / "base" / f"seed{i}" for i in range(3)]
    assert heartgrid("baseline", "save", "small", *runs) == 2
    assert "already exists" in capsys.readouterr().err
    assert heartgrid("baseline", "save", "small", *runs[:2], "--force") == 0
    assert len(load_baseline("small").info["runs"]) == 2
    assert heartgrid("baseline", "save", "one", runs[0]) == 2
    assert "at least 2 runs" in capsys.readouterr().err
    assert heartgrid("baseline", "save", "bad name", *runs) == 2
    assert heartgrid("baseline", "save", "nohearts", *runs, "--metric", "env_agent/heart.lost") == 2
    assert "guarded metric 'env_agent/heart.lost' is not logged" in capsys.readouterr().err
    mixed = [*runs[:2], *write_side(tmp_path / "mixed", "m", [1.0], overrides=("trainer.gamma=0.9",))]
    assert heartgrid("baseline", "save", "mixed", *mixed) == 2
    err = capsys.readouterr().err
    assert "must share one config" in err and "trainer.gamma: 0.977 vs 0.9" in err
    assert heartgrid("regress", "nope", *runs) == 2
    assert "no baseline 'nope'" in capsys.readouterr().err
    assert heartgrid("regress", "small", runs[0]) == 2
    assert "at least 2 new runs" in capsys.readouterr().err
    assert heartgrid("regress", "small", *runs, "--metric", "auc:") == 2
    assert heartgrid("regress", "small", *runs, "--metric", "env_agent/heart.gett") == 2
    assert "baseline 'small' has no metric 'env_agent/heart.gett' logged by all its runs; did you mean " \
        "env_agent/heart.get?" in capsys.readouterr().err


def test_a_crash_while_replacing_a_baseline_leaves_the_old_one_on_disk(store: Path, tmp_path: Path, monkeypatch):
    runs = [tmp_path / "base" / f"seed{i}" for i in range(3)]
    real_rename, calls = durable.os.rename, []

    def crash_on_second_rename(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the new baseline moving into place
            raise OSError("simulated crash")
        real_rename(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(durable.os, "rename", crash_on_second_rename)
        with pytest.raises(OSError, match="simulated crash"):
            heartgrid("baseline", "save", "small", *runs[:2], "--store", store, "--force")
    assert sorted(p.name for p in store.iterdir()) == [".old-small"]  # the staging copy is cleaned
    assert len(json.loads((store / ".old-small" / "baseline.json").read_text())["runs"]) == 3

    assert heartgrid("baseline", "save", "small", *runs[:2], "--store", store, "--force") == 0
    assert sorted(p.name for p in store.iterdir()) == ["small"]
    assert len(load_baseline("small", store=store).info["runs"]) == 2


DAMAGES = {
    "baseline.json not JSON": (lambda b: (b / "baseline.json").write_text("{bad"), r"baseline\.json is not JSON"),
    "baseline.json a list": (lambda b: (b / "baseline.json").write_text("[]"), r"baseline\.json is not a JSON object"),
    "baseline.json without runs": (
        lambda b: (b / "baseline.json").write_text(json.dumps(
            {k: v for k, v in json.loads((b / "baseline.json").read_text()).items() if k != "runs"})),
        r"baseline\.json lacks runs \(or holds the wrong type\)"),
    "a run without its label": (
        lambda b: (b / "baseline.json").write_text(json.dumps(
            {**json.loads((b / "baseline.json").read_text()), "runs": [{}]})),
        r"lacks a label and path for every run"),
    "config.json deleted": (lambda b: (b / "config.json").unlink(), r"cannot read .*config\.json: No such file"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_baseline_is_exit_2_never_a_regression(store: Path, tmp_path: Path, capsys, damage: str):
    """regress's exit 1 means "a regression" to CI; a baseline it cannot read is a usage error
    (exit 2) that names the file and how to mend it, and `baseline list` still lists the rest."""
    runs = write_side(tmp_path / "other", "seed", BASE_PLATEAUS)
    assert heartgrid("baseline", "save", "other", *runs, "--store", store) == 0
    damage_it, reason = DAMAGES[damage]
    damage_it(store / "small")
    capsys.readouterr()
    new = write_side(tmp_path / "new", "run", [1.02, 0.97, 1.01], first_seed=10)
    for verb in (("regress", "small", *new), ("baseline", "show", "small")):
        assert heartgrid(*verb, "--store", store) == 2
        err = capsys.readouterr().err
        assert re.search(rf"error: baseline 'small' is damaged: .*{reason}.*; save it again with", err), err
    assert heartgrid("baseline", "list", "--store", store) == 0
    listed = capsys.readouterr()
    assert [line.split()[0] for line in listed.out.splitlines()] == ["other"]
    assert re.search(rf"warning: baseline 'small' is damaged: .*{reason}", listed.err)


def test_a_baseline_whose_curves_cannot_be_read_is_exit_2(store: Path, tmp_path: Path, capsys):
    (store / "small" / "curves.parquet").write_bytes(b"")
    new = write_side(tmp_path / "new", "run", [1.02, 0.97, 1.01], first_seed=10)
    assert heartgrid("regress", "small", *new, "--store", store) == 2
    assert re.search(r"error: baseline 'small' is damaged: cannot read .*curves\.parquet \(.+\); save it again",
                     capsys.readouterr().err)


def test_a_baseline_store_that_is_a_file_is_refused(tmp_path: Path, capsys):
    (tmp_path / "store").write_text("x")
    assert heartgrid("baseline", "list", "--store", tmp_path / "store") == 2
    assert "baseline store " in capsys.readouterr().err
