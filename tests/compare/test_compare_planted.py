"""Planted regressions on the small learning recipe, caught by `heartgrid regress`.

A baseline of the unchanged `small_easy_shaped` (3 seeds) is checked against real training runs
with one planted change each:
- shaped rewards set to zero: the config check names the reward paths, and with those paths
  allowed the statistics still fail it (the reward curve collapses to the hearts alone);
- the altar back to 3 batteries, 8-way movement enabled: the config check;
- a metric no longer logged (`overview/reward`, the one the reference system lost): the
  metric check (the unchanged runs with that metric stripped from metrics.jsonl);
and new seeds of the unchanged recipe pass.

All runs are trained once per module through the real CLI, one process per core
(13 runs x 16,384 agent steps). That takes minutes on 2 cores, so the module is marked slow;
run it alone with
    .venv/bin/python -m pytest tests/compare/test_compare_planted.py -m slow
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from compare_synth import heartgrid

from heartgrid.compare import ab
from heartgrid.recipes.arena import SHAPED_REWARDS

pytestmark = pytest.mark.slow

RECIPE = "small_easy_shaped"
STEPS = 16_384  # 8 epochs of 2,048 agent steps: every baseline seed finishes rewarded episodes
COMMON = ["logging.console=none", "logging.tensorboard=false", f"trainer.total_timesteps={STEPS}"]
SHAPED_ZERO = [f"game.agent.rewards.{item}=0" for item in SHAPED_REWARDS if item != "heart"]

# name -> (overrides, seeds). New runs use seeds the baseline did not.
PLANTED: dict[str, tuple[list[str], list[int]]] = {
    "baseline": ([], [0, 1, 2, 3]),
    "unchanged": ([], [4, 5]),
    "shaped_zero": (SHAPED_ZERO, [4, 5, 6]),
    "altar_3": (["game.objects.altar.input_resources.battery_red=3"], [4, 5]),
    "move_8way": (["game.actions.move_8way.enabled=true"], [4, 5]),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("planted")
    jobs, runs = [], {}
    for name, (overrides, seeds) in PLANTED.items():
        side = ab.Side(name, RECIPE, RECIPE, overrides)
        runs[name] = []
        for seed in seeds:
            run = f"{name}-{seed}"
            argv = [sys.executable, "-m", "heartgrid.tools.cli", "train", RECIPE, *overrides, *COMMON,
                    "system.device=cpu", f"run={run}", f"data_dir={root / 'runs'}", f"system.seed={seed}"]
            jobs.append(ab.TrainJob(side, seed, run, argv, root / "logs" / f"{run}.log", root / "runs" / run, 0))
            runs[name].append(root / "runs" / run)
    ab.run_jobs(jobs, parallel=ab.default_parallel(len(jobs)))

    # "A metric no longer logged": the unchanged runs as a trainer that lost overview/reward
    # would have written them.
    runs["no_reward_metric"] = []
    for run in runs["unchanged"]:
        copy = root / "runs" / f"no_reward_metric-{run.name}"
        shutil.copytree(run, copy)
        records = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
        (copy / "metrics.jsonl").write_text(
            "".join(json.dumps({k: v for k, v in r.items() if k != "overview/reward"}) + "\n" for r in records)
        )
        runs["no_reward_metric"].append(copy)

    store = root / "store"
    assert heartgrid("baseline", "save", "small", *runs["baseline"], "--store", store) == 0
    runs["store"] = [store]
    return runs


def regress(trained: dict[str, list[Path]], name: str, *extra: object) -> int:
    return heartgrid("regress", "small", *trained[name], "--store", trained["store"][0], *extra)


def test_unchanged_recipe_passes(trained, capsys):
    assert regress(trained, "unchanged") == 0
    assert capsys.readouterr().out.rstrip().endswith("OK: no regression detected")


def test_shaped_rewards_zero_is_caught_by_config_and_by_statistics(trained, capsys):
    assert regress(trained, "shaped_zero") == 1
    out = capsys.readouterr().out
    assert "FAIL config equals the baseline's beyond run identity" in out
    runs = "in run(s) shaped_zero-4, shaped_zero-5, shaped_zero-6"
    assert f"game.agent.rewards.ore_red: baseline 0.1 -> 0.0 {runs}" in out
    assert "game.agent.rewards.battery_red: baseline 0.8 -> 0.0" in out

    # Declared as intended, the change is still a regression: without shaped rewards the reward
    # curve of these short runs is the hearts alone, 0, below every baseline seed's. A rank test
    # needs no more than that ordering: 4 vs 3 runs fully separated give p of about 0.02.
    extra = ("--allow-config", "game.agent.rewards", "--metric", "auc:overview/reward", "--test", "mannwhitney")
    assert regress(trained, "shaped_zero", *extra) == 1
    out = capsys.readouterr().out
    assert "PASS config equals the baseline's beyond run identity (allowed to differ: game.agent.rewards)" in out
    assert "FAIL no guarded metric is significantly worse (one-sided Mann-Whitney U test" in out
    line = next(line for line in out.splitlines() if line.startswith("  auc overview/reward: baseline"))
    assert "-> new 0, " in line and line.endswith(": worse")


def test_altar_back_to_three_batteries_is_caught_by_the_config_check(trained, capsys):
    assert regress(trained, "altar_3") == 1
    out = capsys.readouterr().out
    assert "game.objects.altar.input_resources.battery_red: baseline 1 -> 3 in run(s) altar_3-4, altar_3-5" in out


def test_eight_way_movement_is_caught_by_the_config_check(trained, capsys):
    assert regress(trained, "move_8way") == 1
    out = capsys.readouterr().out
    assert "game.actions.move_8way.enabled: baseline False -> True in run(s) move_8way-4, move_8way-5" in out


def test_metric_no_longer_logged_is_caught_by_the_metric_check(trained, capsys):
    assert regress(trained, "no_reward_metric") == 1
    out = capsys.readouterr().out
    assert "PASS config equals the baseline's beyond run identity" in out
    assert "overview/reward: not logged by run(s) no_reward_metric-unchanged-4, no_reward_metric-unchanged-5" in out
