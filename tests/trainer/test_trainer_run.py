"""`train()` end to end on the real engine and policy: the run directory, the metric contract,
resume, run-directory rules, determinism, W&B offline, the plot and the benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from test_trainer_loop import without_clock

from heartgrid.checkpoint import CheckpointError, CheckpointManager
from heartgrid.recipes import build_config
from heartgrid.tools import bench_train as bench
from heartgrid.trainer.logger import read_metrics
from heartgrid.trainer.metric_contract import STEP_KEY, missing_metrics, required_metrics
from heartgrid.trainer.run import RunDirectoryError, check_resumable, prepare_run_dir, train


# small_easy_shaped, shrunk: 8 slots x 16 steps x 2 passes = 256 agent steps per epoch, 3 epochs;
# episodes of at most 40 steps so that every epoch finishes some. One torch thread: on a small
# shared machine, two threads that wait for each other are many times slower.
SHORT = [
    "system.device=cpu", "system.torch_threads=1", 'logging.console="none"', "trainer.num_envs=4",
    "trainer.batch_size=256",
    "trainer.minibatch_size=128", "trainer.total_timesteps=768", "trainer.checkpoint_interval=2",
    "game.max_steps=40",
]


def short_config(data_dir: Path, run: str, *extra: str):
    return build_config("small_easy_shaped", [*SHORT, f"data_dir={data_dir}", f"run={run}", *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("runs")
    return train(short_config(data_dir, "first"))


def test_run_directory_holds_config_metrics_tensorboard_log_and_checkpoints(trained):
    config = short_config(trained.parent, "first")
    assert json.loads((trained / "config.json").read_text()) == config.model_dump(mode="json")
    records = read_metrics(trained)
    assert [r["metric/epoch"] for r in records] == [1, 2, 3]
    assert [r[STEP_KEY] for r in records] == [256, 512, 768]
    assert list((trained / "tb").glob("events.out.tfevents.*"))
    log = (trained / "log.txt").read_text()
    assert "starting" in log and "finished at agent step 768" in log and "epoch 3" in log
    assert "torch threads: 1 (system.torch_threads)" in log
    assert [p.name for p in CheckpointManager(trained).checkpoints()] == ["epoch_000002", "epoch_000003"]


def test_every_contract_metric_is_logged(trained):
    config = short_config(trained.parent, "first")
    logged = {name for record in read_metrics(trained) for name in record}
    assert missing_metrics(config, logged) == []
    assert "were never logged" not in (trained / "log.txt").read_text()
    required = required_metrics(config)
    for name in ("overview/reward", "losses/explained_variance", "env_agent/heart.get",
                 "env_agent/action.move.success", "env_game/altar.conversions", "timing/frac/env",
                 "parameters/learning_rate", "experience/ep_lengths", "curriculum/pool_size"):
        assert name in required


def test_a_run_that_never_logged_a_contract_metric_says_so(tmp_path, monkeypatch):
    """A renamed metric (the dehydration investigation's lost overview/reward) is named in
    log.txt at the end of the run, not only by the tests and the comparison tools."""
    from heartgrid.trainer.stats import StatsAccumulator

    means = StatsAccumulator.means
    monkeypatch.setattr(StatsAccumulator, "means", lambda self: {
        ("overview/episode_reward" if k == "overview/reward" else k): v for k, v in means(self).items()})
    run = train(short_config(tmp_path, "renamed"))
    assert ("warning: 1 metric(s) of the contract were never logged: overview/reward (metrics about episodes "
            "need an episode to end") in (run / "log.txt").read_text()


def test_a_neighbour_that_takes_the_threads_cores_is_logged_and_said(tmp_path, monkeypatch):
    """timing/neighbour_cores reaches metrics.jsonl and NeighbourWatch's warning log.txt (here
    the load is made up and the watch's minute shortened)."""
    import functools

    from heartgrid import threads

    monkeypatch.setattr(threads.LoadMeter, "read", lambda self: 1.5)
    monkeypatch.setattr("heartgrid.trainer.run.NeighbourWatch",
                        functools.partial(threads.NeighbourWatch, cpus=2, seconds=0.0))
    run = train(short_config(tmp_path, "crowded", "system.torch_threads=2"))
    assert [r["timing/neighbour_cores"] for r in read_metrics(run)] == [1.5, 1.5, 1.5]
    log = (run / "log.txt").read_text()
    assert log.count("work outside this process kept 1.5 of its 2 cores busy") == 1
    assert "run the same command again with system.torch_threads=1 added" in log


def test_every_contract_metric_is_logged_by_the_arena_recipe(tmp_path):
    """The arena recipe adds its learning-progress curriculum and more objects and actions."""
    config = build_config("arena_basic_easy_shaped", [
        "system.device=cpu", "system.torch_threads=1", 'logging.console="none"', f"data_dir={tmp_path}",
        "logging.tensorboard=false", "game.max_steps=40", "trainer.num_envs=2",
        "trainer.batch_size=1536", "trainer.minibatch_size=768", "trainer.total_timesteps=3072",
    ])
    logged = {name for record in read_metrics(train(config)) for name in record}
    assert missing_metrics(config, logged) == []
    assert "curriculum/lp/progress_mean" in required_metrics(config)


def test_same_seed_gives_identical_metrics_and_weights(trained):
    again = train(short_config(trained.parent, "again"))
    assert [without_clock(r) for r in read_metrics(again)] == [without_clock(r) for r in read_metrics(trained)]
    a = CheckpointManager(trained).load_latest().policy_weights
    b = CheckpointManager(again).load_latest().policy_weights
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_compiled_engine_step_trains_the_same_run(trained):
    """system.compile: the same game step for step, so the same metrics and weights; log.txt
    says what compiling cost."""
    compiled = train(short_config(trained.parent, "compiled", "system.compile=true"))
    assert [without_clock(r) for r in read_metrics(compiled)] == [without_clock(r) for r in read_metrics(trained)]
    a = CheckpointManager(trained).load_latest().policy_weights
    b = CheckpointManager(compiled).load_latest().policy_weights
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "engine step: compiled with torch.compile in" in (compiled / "log.txt").read_text()
    # Compiling or not is no change of the run: it resumes either way, and says so.
    train(short_config(trained.parent, "compiled", "trainer.total_timesteps=1024"))
    assert [r["metric/epoch"] for r in read_metrics(compiled)] == [1, 2, 3, 4]
    assert "system.compile changed from true to false" in (compiled / "log.txt").read_text()


def test_the_tensor_engine_step_trains_the_same_run(trained):
    """system.native_step (on by default on a CPU): the C++ step and the tensor step play the
    same game, so a run is the same, and log.txt says which step ran."""
    assert "engine step: native (system.native_step=auto" in (trained / "log.txt").read_text()
    tensor = train(short_config(trained.parent, "tensor", "system.native_step=off"))
    assert [without_clock(r) for r in read_metrics(tensor)] == [without_clock(r) for r in read_metrics(trained)]
    a = CheckpointManager(trained).load_latest().policy_weights
    b = CheckpointManager(tensor).load_latest().policy_weights
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "engine step: tensor (system.native_step=off" in (tensor / "log.txt").read_text()


def test_a_run_without_the_native_step_says_why_in_its_log(tmp_path, monkeypatch):
    from heartgrid.engine import batched, native

    monkeypatch.setenv("HEARTGRID_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    native.load.cache_clear()
    batched._warn_once.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="native engine step is unavailable"):
            run_dir = train(short_config(tmp_path, "fallback", "trainer.total_timesteps=256"))
    finally:
        native.load.cache_clear()
    log = (run_dir / "log.txt").read_text()
    assert "engine step: tensor (system.native_step=auto" in log
    assert "the native engine step is unavailable: cannot run the C++ compiler" in log


def test_resume_extends_the_run_and_logs_each_epoch_once(trained, tmp_path):
    import shutil

    copy = tmp_path / "branch"  # a copied run directory resumes under its new name and place
    shutil.copytree(trained, copy)
    train(short_config(tmp_path, "branch", "trainer.total_timesteps=1280"))
    records = read_metrics(copy)
    assert [r["metric/epoch"] for r in records] == [1, 2, 3, 4, 5]
    log = (copy / "log.txt").read_text()
    assert "resuming at epoch 3, agent step 768" in log
    assert "total_timesteps changed from 768 to 1280" in log
    # The same command again: nothing left to train, and the first line says so.
    train(short_config(tmp_path, "branch", "trainer.total_timesteps=1280"))
    assert [r["metric/epoch"] for r in read_metrics(copy)] == [1, 2, 3, 4, 5]
    assert ("already finished at epoch 5, agent step 1280 (trainer.total_timesteps=1280; a larger one "
            "trains it on)") in (copy / "log.txt").read_text()


def test_resume_with_another_config_is_refused(trained):
    config = short_config(trained.parent, "first", "trainer.gamma=0.9")
    with pytest.raises(RunDirectoryError, match=r"trainer\.gamma: 0\.977 -> 0\.9"):
        prepare_run_dir(config, resume=None, overwrite=False)
    # The message gives the overrides that put the saved values back (a run started before the
    # default policy changed resumes with policy.name=fast).
    other = short_config(trained.parent, "first", "trainer.gamma=0.9", "policy.name=fast")
    with pytest.raises(RunDirectoryError, match=r"add policy\.name=conv_lstm trainer\.gamma=0\.977\)") as refused:
        prepare_run_dir(other, resume=None, overwrite=False)
    # What may change, as a person writes it, and how to start over instead.
    assert ("system.compile, system.native_step, system.stop_signals, system.stop_grace_s, logging.*, wandb.*, "
            "evaluation.*,") in str(refused.value)
    # What a full disk advises (fewer checkpoints kept), and the evaluation while training, may change.
    check_resumable(short_config(trained.parent, "first", "trainer.keep_last_n=1", "evaluation.suite=navigation",
                                 "evaluation.interval=5"), trained)
    # Except where self-play NPCs draw from the checkpoints kept.
    selfplay = ("game.policy_agents_pct=0.5", "game.npc_policy_uri=self", "game.npc_sampling=uniform")
    run = trained.parent / "selfplay"
    run.mkdir()
    (run / "config.json").write_text(short_config(trained.parent, "selfplay", *selfplay).to_json())
    check_resumable(short_config(trained.parent, "selfplay", *selfplay, "evaluation.interval=0"), run)
    with pytest.raises(RunDirectoryError, match=r"trainer.keep_last_n changed \(5 -> 1\): its self-play NPCs draw"):
        check_resumable(short_config(trained.parent, "selfplay", *selfplay, "trainer.keep_last_n=1"), run)
    assert str(refused.value).endswith("or start it over (--overwrite deletes the run directory first).")
    # Another recipe: the recipe is named first, not buried under the game differences it makes.
    recipe = build_config("small_cardinal", [*SHORT, f"data_dir={trained.parent}", "run=first"])
    with pytest.raises(RunDirectoryError, match=r"trained with recipe 'small_easy_shaped', not 'small_cardinal'; "
                                                r"name that recipe to go on with it \(heartgrid train "
                                                r"small_easy_shaped run=first \.\.\.\)") as refused:
        prepare_run_dir(recipe, resume=None, overwrite=False)
    assert "game." not in str(refused.value)


@pytest.mark.parametrize("follower", [
    None,
    ["trainer.minibatch_sampling=prioritized", "trainer.prioritized.alpha=1"],
    ['trainer.schedules={"learning_rate": {"type": "linear", "initial": 0.001, "final": 0.0}}'],
], ids=["nothing", "prioritized", "schedule"])
def test_total_timesteps_may_change_on_resume_only_when_nothing_follows_progress(tmp_path, follower):
    extra = follower or []
    saved = short_config(tmp_path, "run", *extra)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(saved.to_json())
    longer = short_config(tmp_path, "run", *extra, "trainer.total_timesteps=1536")
    if follower is None:
        check_resumable(longer, tmp_path / "run")
        return
    why = "prioritized sampling's beta" if "prioritized" in follower[0] else "schedules of learning_rate"
    with pytest.raises(RunDirectoryError, match=rf"total_timesteps changed \(768 -> 1536\).*{why}"):
        check_resumable(longer, tmp_path / "run")


def test_run_directory_rules(tmp_path, trained):
    with_checkpoint = short_config(trained.parent, "first")
    with pytest.raises(RunDirectoryError, match=r"already holds a run with checkpoints; .* or start it over "
                                                r"\(--overwrite deletes the run directory first\)"):
        prepare_run_dir(with_checkpoint, resume=False, overwrite=False)
    assert prepare_run_dir(with_checkpoint, resume=None, overwrite=False) == (True, [])

    fresh = short_config(tmp_path, "new")
    with pytest.raises(RunDirectoryError, match="cannot resume"):
        prepare_run_dir(fresh, resume=True, overwrite=False)
    assert prepare_run_dir(fresh, resume=None, overwrite=False) == (False, [])

    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "notes.txt").write_text("x")
    with pytest.raises(RunDirectoryError, match="holds notes.txt, which no run writes"):
        prepare_run_dir(fresh, resume=None, overwrite=False)
    # The caller holds the directory's lock, so overwrite empties the directory but keeps it.
    assert prepare_run_dir(fresh, resume=None, overwrite=True) == (False, [])
    assert list((tmp_path / "new").iterdir()) == []
    with pytest.raises(RunDirectoryError, match="contradict"):
        prepare_run_dir(fresh, resume=True, overwrite=True)


def test_a_config_that_cannot_be_built_leaves_no_run_directory(tmp_path):
    """A valid config whose trainer cannot be built (its initial policy does not exist)."""
    config = short_config(tmp_path, "bad", f"trainer.initial_policy={tmp_path / 'no_such_run'}")
    with pytest.raises(CheckpointError, match="no_such_run"):
        train(config)
    assert not (tmp_path / "bad").exists()


def test_wandb_offline(tmp_path):
    config = short_config(tmp_path, "wb", "wandb.enabled=true", "trainer.total_timesteps=256",
                          "logging.tensorboard=false")
    run_dir = train(config)
    assert list((run_dir / "wandb").glob("offline-run-*"))
    assert not (run_dir / "tb").exists()


def test_plot_writes_a_png(trained, tmp_path):
    from heartgrid.tools import plot

    parser = argparse.ArgumentParser()
    plot.register(parser.add_subparsers())
    out = tmp_path / "curves.png"
    args = parser.parse_args(["plot", str(trained), "--out", str(out)])
    assert args.func(args) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves = plot.read_curves(trained)
    assert curves["env_agent/heart.get"][0] == [256, 512, 768]


def test_plot_of_a_directory_without_metrics_is_a_usage_error(tmp_path):
    from heartgrid.tools import plot
    from heartgrid.tools.cli import UsageError

    parser = argparse.ArgumentParser()
    plot.register(parser.add_subparsers())
    args = parser.parse_args(["plot", str(tmp_path)])
    with pytest.raises(UsageError, match="has no metrics.jsonl"):
        args.func(args)


def test_bench_train_json(capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["small_easy_shaped", *SHORT[1:], "--device", "cpu", "--seconds", "0.1", "--json"])
    assert bench.run(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["agent_steps_per_s"] > 0 and result["epochs"] >= 1
    assert result["peak_rss_mb"] > 100  # MB, not KiB or bytes: torch alone takes more
    assert isinstance(result["page_faults_per_epoch"], float)
    assert lines[-2].startswith("  memory: peak ") and lines[-2].endswith(" page faults per epoch")
    shares = [result[f"{p}_share"] for p in ("env", "forward", "update", "rest")]
    assert all(s >= 0 for s in shares) and sum(shares) == pytest.approx(1.0)


def test_plot_trailing_mean_and_smooth_option(trained, tmp_path, capsys):
    from heartgrid.tools.cli import main
    from heartgrid.tools.plot import trailing_mean

    assert trailing_mean([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert trailing_mean([2.0, 4.0], 1) == [2.0, 4.0]
    out = tmp_path / "smooth.png"
    assert main(["plot", str(trained), "--smooth", "3", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(trained), "--smooth", "0"]) == 2
    assert "--smooth must be at least 1" in capsys.readouterr().err
