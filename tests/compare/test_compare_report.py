"""`heartgrid compare` and `heartgrid ab`: report files, self-contained HTML, training jobs."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from compare_synth import heartgrid, write_run, write_side

from heartgrid.compare import ab
from heartgrid.compare.runs import CompareError
from heartgrid.compare.stats import TESTS
from heartgrid.tools import compare_cmd

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _strict_json(path: Path) -> dict:
    def refuse(constant: str):
        raise AssertionError(f"report.json holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_compare_writes_json_png_and_self_contained_html(tmp_path: Path, capsys):
    reference = write_side(tmp_path, "ref", [1.0, 1.05, 0.95, 1.02])
    candidate = write_side(tmp_path, "cand", [0.7, 0.75, 0.72, 0.68], first_seed=10,
                           overrides=("game.agent.rewards.ore_red=0",))
    out = tmp_path / "report"
    assert heartgrid("compare", *candidate, "--vs", *reference, "--out", out) == 0
    text = capsys.readouterr().out
    # The config diff comes first, then the statistics.
    assert text.startswith("config diff (reference -> candidate), 1 path(s):\ngame.agent.rewards.ore_red: 0.1 -> 0.0")
    assert text.index("config diff") < text.index("metric ")
    assert "candidate is worse than reference on final env_agent/heart.get" in text

    assert {p.name for p in out.iterdir()} == {"report.json", "curves.png", "report.html"}
    report = _strict_json(out / "report.json")
    assert report["settings"]["test"] == "Welch's t-test" and report["settings"]["effect_size"] == "Hedges' g"
    assert report["config_diff"] == [{"path": "game.agent.rewards.ore_red", "reference": 0.1, "candidate": 0.0}]
    hearts = report["metrics"]["final:env_agent/heart.get:higher"]
    assert hearts["verdict"] == "worse" and hearts["reference"]["n"] == 4 and hearts["candidate"]["n"] == 4
    assert sorted(hearts["candidate"]["values"]) == ["cand0", "cand1", "cand2", "cand3"]
    curve = report["curves"]["overview/reward"]
    assert len(curve["agent_step"]) == 100 and set(curve["sides"]) == {"reference", "candidate"}
    assert (out / "curves.png").read_bytes().startswith(PNG_MAGIC)

    page = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*['"](?!data:)""", page), "the page must not load anything"
    assert "<script" not in page and "<link" not in page
    embedded = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert embedded and base64.b64decode(embedded.group(1)) == (out / "curves.png").read_bytes()
    assert "game.agent.rewards.ore_red" in page and "final env_agent/heart.get" in page


def test_notes_for_unequal_lengths_and_missing_metrics(tmp_path: Path, capsys):
    reference = write_side(tmp_path, "ref", [1.0, 1.0])
    candidate = [write_run(tmp_path, "long", seed=5, plateau=1.0, epochs=30),
                 write_run(tmp_path, "short", seed=6, plateau=1.0, drop=("env_agent/heart.get",))]
    assert heartgrid("compare", *candidate, "--vs", *reference, "--out", tmp_path / "r") == 0
    text = capsys.readouterr().out
    assert "runs end at different agent steps (40,960 to 61,440)" in text
    assert "env_agent/heart.get is not logged by candidate run(s) short" in text
    assert "final env_agent/heart.get: insufficient runs (at n=2 vs 1; a test needs 2 runs a side)" in text
    # The untestable metric has no p-value and is not in the Holm family.
    assert ("p-values Holm-adjusted over 1 metric(s), leaving out 1 metric(s) that could not be tested"
            in text), text


def test_notes_for_different_reward_settings_and_thread_counts(tmp_path: Path, capsys):
    reference = write_side(tmp_path, "ref", [1.0, 1.0], threads=2)
    candidate = write_side(tmp_path, "cand", [1.0, 1.0], threads=1, overrides=("game.agent.rewards.ore_red=0",))
    same = write_side(tmp_path, "same", [1.0, 1.0], threads=2)
    assert heartgrid("compare", *candidate, "--vs", *reference, "--out", tmp_path / "r") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert ("the sides' reward settings differ (game.agent.rewards.ore_red): overview/reward measure a "
            "different quantity on each side; compare the sides on env_agent/heart.get") in text
    assert ("the runs trained with different torch thread counts (reference: 2, candidate: 1; "
            "timing/torch_threads)") in text
    assert heartgrid("compare", *same, "--vs", *reference, "--out", tmp_path / "s") == 0
    text = capsys.readouterr().out
    assert "reward settings differ" not in text and "thread counts" not in text
    # A GPU run's CPU threads only feed the GPU: no note.
    gpu = write_side(tmp_path, "gpu", [1.0, 1.0], threads=16)
    for run in gpu:
        config = json.loads((run / "config.json").read_text())
        config["system"]["device"] = "cuda"
        (run / "config.json").write_text(json.dumps(config))
    assert heartgrid("compare", *gpu, "--vs", *reference, "--out", tmp_path / "g") == 0
    assert "thread counts" not in capsys.readouterr().out


def test_a_comparison_with_nothing_to_test_says_so(tmp_path: Path, capsys):
    reference, candidate = write_side(tmp_path, "ref", [1.0]), write_side(tmp_path, "cand", [1.0])
    assert heartgrid("compare", *candidate, "--vs", *reference, "--out", tmp_path / "r") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "p-values Holm-adjusted over no test (no metric could be tested)" in text
    # No family to divide alpha by, and no claim of one: every metric's line is n/a.
    assert "smallest detectable difference (power 0.8, alpha 0.05; no metric could be tested):" in text
    assert " / 1 test" not in text and " / 0 test" not in text
    assert "a test needs 2 runs a side" in text


def test_compare_bad_input_is_a_usage_error(tmp_path: Path, capsys):
    runs = write_side(tmp_path, "r", [1.0, 1.0])
    assert heartgrid("compare", *runs, "--vs", tmp_path / "missing") == 2
    assert "missing: not a directory" in capsys.readouterr().err
    assert heartgrid("compare", runs[0], "--vs", runs[1], "--metric", "overview/rewards") == 2
    err = capsys.readouterr().err
    assert "no run logged a metric named 'overview/rewards'; did you mean overview/reward, overview/sps?" in err
    assert heartgrid("compare", runs[0], "--vs", runs[1], "--metric", "mean:overview/reward") == 2
    assert ("no run logged a metric named 'mean:overview/reward'; did you mean overview/reward? ('mean' is "
            "not a reduction, so it was read as part of the name: a spec is [final:|late:|auc:]NAME"
            "[:higher|:lower])") in capsys.readouterr().err


def test_the_verbs_load_without_the_heavy_libraries():
    """Every `heartgrid` command builds the parser: registering these verbs must not import
    scipy, DuckDB or matplotlib (training subprocesses would pay for them)."""
    code = (
        "import sys, argparse; from heartgrid.tools import compare_cmd; "
        "compare_cmd.register(argparse.ArgumentParser().add_subparsers()); "
        "print(sorted(m for m in ('scipy', 'duckdb', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert set(compare_cmd.TEST_CHOICES) == set(TESTS)


# ---- ab -------------------------------------------------------------------------------------


def test_sides_and_training_commands(tmp_path: Path):
    side = ab.parse_side("B", "small_easy_shaped 'trainer.value_target=refreshed'")
    assert side == ab.Side("B", "small_easy_shaped 'trainer.value_target=refreshed'", "small_easy_shaped",
                           ["trainer.value_target=refreshed"])
    with pytest.raises(CompareError, match="sets system.seed"):
        ab.parse_side("A", "small_easy_shaped system.seed=3")
    with pytest.raises(CompareError, match="side A is empty"):
        ab.parse_side("A", "  ")
    sides = [ab.parse_side("A", "small_easy_shaped"), side]
    configs = [ab.side_config(s, steps=5000, device="cpu") for s in sides]
    jobs = ab.plan_jobs(sides, configs, 2, tmp_path / "runs", tmp_path / "logs", steps=5000, device="cpu")
    assert [j.run for j in jobs] == ["a-seed0", "b-seed0", "a-seed1", "b-seed1"]
    assert jobs[3].argv == [
        sys.executable, "-m", "heartgrid.tools.cli", "train", "small_easy_shaped",
        "trainer.value_target=refreshed", "logging.console=none", "trainer.total_timesteps=5000",
        "system.device=cpu", "run=b-seed1", f"data_dir={tmp_path / 'runs'}", "system.seed=1",
    ]
    config = ab.side_config(side, steps=5000, device="cpu")
    assert config.trainer.value_target == "refreshed" and config.trainer.total_timesteps == 5000


def test_run_jobs_runs_all_and_stops_on_failure(tmp_path: Path):
    side = ab.Side("A", "x", "x", [])
    ok = [ab.TrainJob(side, i, f"ok{i}", [sys.executable, "-c", f"print('run {i}')"], tmp_path / f"ok{i}.log",
                      tmp_path / f"ok{i}", 0) for i in range(3)]
    finished: list[str] = []
    ab.run_jobs(ok, parallel=2, on_done=lambda job, seconds: finished.append(job.run))
    assert sorted(finished) == ["ok0", "ok1", "ok2"]
    assert (tmp_path / "ok2.log").read_text() == "run 2\n"
    failing = ab.TrainJob(side, 0, "bad", [sys.executable, "-c", "print('boom'); raise SystemExit(5)"],
                          tmp_path / "bad.log", tmp_path / "bad", 0)
    with pytest.raises(ab.TrainingFailed, match=r"(?s)training bad exited with status 5.*boom"):
        ab.run_jobs([failing, *ok], parallel=1)


def test_every_ab_job_trains_on_one_thread_count(tmp_path: Path, monkeypatch):
    """Chosen once for all the runs (the count changes float sums): the user's OMP_NUM_THREADS
    as it is, else the cores other work leaves free shared among the jobs that run at once;
    kept in the plan, so that a resumed A/B trains its last runs as the first ones."""
    import heartgrid.threads as threads

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.share_of_cores(2).threads == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "choose_threads", lambda: threads.ThreadChoice(3, "3 cores, 0.0 kept busy"))
    assert [threads.share_of_cores(n).threads for n in (1, 2, 4)] == [3, 1, 1]
    assert threads.share_of_cores(2).reason == "3 cores, 0.0 kept busy; 3 free, 2 at once"
    out = tmp_path / "ab"
    assert not ab.check_plan(out, {"a": "x"})
    assert ab.planned_threads(out, 1).threads == 3  # chosen and kept
    assert ab.check_plan(out, {"a": "x"})  # the same plan: a resume
    assert ab.planned_threads(out, 2) == ab.ThreadChoice(3, "as when this A/B started")
    side = ab.parse_side("A", "small_easy_shaped")
    show = "import os; print(os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])"
    jobs = [ab.TrainJob(side, i, f"t{i}", [sys.executable, "-c", show], tmp_path / f"t{i}.log", tmp_path / f"t{i}", 0)
            for i in range(2)]
    ab.run_jobs(jobs, parallel=2, threads=2)
    assert [(tmp_path / f"t{i}.log").read_text() for i in range(2)] == ["2 2\n", "2 2\n"]


def test_ab_prints_the_diff_trains_and_reports(tmp_path: Path, monkeypatch, capsys):
    def fake_training(jobs, *, parallel, on_done, stop, threads):
        # Stands in for `heartgrid train`: side B's runs reach a lower plateau.
        assert threads >= 1
        for job in jobs:
            data_dir = Path(next(a for a in job.argv if a.startswith("data_dir="))[len("data_dir="):])
            write_run(data_dir, job.run, seed=job.seed, plateau=1.0 if job.side.label == "A" else 0.6,
                      overrides=tuple(job.side.overrides))
            on_done(job, 0.1)
        return []

    monkeypatch.setattr(ab, "run_jobs", fake_training)
    out = tmp_path / "ab"
    code = heartgrid("ab", "small_easy_shaped", "small_easy_shaped trainer.value_target=refreshed",
                     "--seeds", "3", "--steps", "40960", "--device", "cpu", "--out", out)
    assert code == 0
    text = capsys.readouterr().out
    assert text.startswith('config diff (A -> B), 1 path(s):\ntrainer.value_target: "rollout" -> "refreshed"')
    parallel = min(6, os.cpu_count() or 1)
    assert f"training 3 seeds of A and of B: 6 runs of 40,960 agent steps, {parallel} at a time" in text
    assert "[6/6] B seed 2 done" in text
    assert "B is worse than A on final env_agent/heart.get" in text
    assert sorted(p.name for p in (out / "runs").iterdir()) == [f"{s}-seed{i}" for s in "ab" for i in range(3)]
    description = _strict_json(out / "report.json")["candidate"]["description"]
    assert description == "small_easy_shaped trainer.value_target=refreshed"
    again = tmp_path / "ab-typo"
    assert heartgrid("ab", "small_easy_shaped", "small_easy_shaped", "--seeds", "2", "--device", "cpu",
                     "--out", again, "--metric", "env_agent/heart.gett") == 2
    err = capsys.readouterr().err
    assert f"the runs are in {again / 'runs'}; compare them with `heartgrid compare" in err
    assert heartgrid("ab", "small_easy_shaped", "small_easy_shaped", "--seeds", "2", "--out", out) == 2
    assert "holds an A/B with another plan" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    assert heartgrid("ab", "small_easy_shaped", "small_easy_shaped", "--seeds", "2", "--out", tmp_path / "other") == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert heartgrid("ab", "small_easy_shaped", "small_easy_shaped", "--seeds", "1") == 2
