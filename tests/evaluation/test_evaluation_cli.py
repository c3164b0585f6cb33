"""`heartgrid eval URI... --suite S`: checkpoints scored side by side, the scorecard printed and
written, the episodes in the stats database; every usage error is exit 2 with what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
import torch

from heartgrid.checkpoint import CheckpointManager, save_policy
from heartgrid.checkpoint.durable import sha256_file
from heartgrid.config.run import PolicyConfig
from heartgrid.engine.batched import BatchedEngine
from heartgrid.evaluation.stats_db import pending_shards, write_retraction
from heartgrid.policies import make_policy
from heartgrid.recipes import build_config
from heartgrid.tools import cli

SIMS = ["--simulation", "maze_small", "--simulation", "navigation/emptyspace_withinsight"]


def small_policy(game_recipe: str, seed: int, overrides: list[str] = ()) -> torch.nn.Module:
    config = build_config(game_recipe, ["system.device=cpu", *overrides])
    engine = BatchedEngine(config.game, 1)
    torch.manual_seed(seed)
    return make_policy(PolicyConfig(hidden_size=16, lstm_layers=1), engine.features,
                       engine.action_names, engine.obs_shape)


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A run directory with one checkpoint, an exported policy, and a 7x7-window policy."""
    root = tmp_path_factory.mktemp("policies")
    run = root / "navrun"
    CheckpointManager(run).save(3, 4096, small_policy("navigation_maze", 0), {"epoch": 3})
    exported = save_policy(root / "exported", small_policy("navigation_maze", 1))
    narrow = save_policy(root / "narrow", small_policy("small_easy_shaped", 2))
    return {"run": run, "exported": exported, "narrow": narrow}


def test_eval_on_another_recipe_says_what_the_policy_never_trained_on(policies: dict[str, Path], capsys):
    """navrun was built for navigation_maze (move, rotate, get_items): the arena adds actions it
    never scored, whose random embeddings play part of every episode."""
    options = ["--episodes", "1", "--device", "cpu"]
    assert cli.main(["eval", str(policies["run"]), "navigation_maze", *options]) == 0
    assert "warning" not in capsys.readouterr().err  # its own game
    assert cli.main(["eval", str(policies["run"]), "arena_basic_easy_shaped", *options]) == 0
    warning = next(line for line in capsys.readouterr().err.splitlines() if "warning" in line)
    assert warning.startswith("heartgrid eval: warning: the policy meets this game partly untrained")
    assert "actions it never trained on (their embeddings are new and random): noop_0," in warning
    assert "read as zeros" not in warning


def test_the_untrained_note_names_features_the_game_lacks_not_those_the_policy_ignores() -> None:
    from heartgrid.evaluation.run import untrained_note

    engine = BatchedEngine(build_config("navigation_maze", ["system.device=cpu"]).game, 1)
    policy, features, actions = small_policy("navigation_maze", 0), engine.features.names, engine.action_space.names
    assert untrained_note(policy, features, actions) is None
    note = untrained_note(policy, [f for f in features if f != "agent:color"] + ["inv:gold"], actions)
    assert "1 of its features this game lacks (they read as zeros): agent:color." in note
    assert "gold" not in note and "actions" not in note.split(":", 1)[1]


def test_eval_says_when_its_merge_removed_retracted_evaluations(policies: dict[str, Path], tmp_path: Path,
                                                              capsys):
    """A run resumed from epoch 2 retracts the evaluations of its epoch-3 policy made before; the
    merge that applies the retraction says how many episodes it removed."""
    db = tmp_path / "evals.duckdb"
    argv = ["eval", str(policies["run"]), "--suite", "navigation", "--simulation", "maze_small",
            "--episodes", "2", "--device", "cpu", "--stats-db", str(db)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "(1 shard(s) merged)" in out
    assert out.startswith("suite navigation: 1 simulation x 1 policy;")
    write_retraction(db, ["navrun"], 2)
    assert cli.main(argv) == 0
    assert ("(2 shard(s) merged; 2 episode(s) of evaluations retracted by a resumed or restarted run removed)"
            in capsys.readouterr().out)
    conn = duckdb.connect(str(db), read_only=True)
    assert conn.execute("SELECT count(*) FROM episodes").fetchone()[0] == 2  # the second evaluation's
    conn.close()


def test_eval_scores_two_policies_on_a_suite(policies: dict[str, Path], tmp_path: Path, capsys):
    db, out = tmp_path / "evals.duckdb", tmp_path / "card.json"
    uri = f"file://{policies['exported'] / 'policy.safetensors'}"
    code = cli.main(["eval", str(policies["run"]), uri, "--suite", "navigation", *SIMS, "--episodes", "2",
                     "--device", "cpu", "--stats-db", str(db), "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert lines[0] == "suite navigation: 2 simulations x 2 policies; sampled actions; device cpu"
    header = lines[2].split()
    assert header == ["simulation", "navrun@3", "exported"]
    assert any(line.startswith("navigation/maze_small ") for line in lines)
    assert any(line.startswith("overall (1 category) ") for line in lines)
    assert "navrun@3: " in captured.out and "epoch 3, agent_step 4,096" in captured.out
    assert "stats: 8 episodes written to" in captured.out
    assert "navrun@3  navigation/maze_small" in captured.err  # progress, one line per simulation
    data = json.loads(lines[-1])
    assert data == json.loads(out.read_text())
    assert [p["label"] for p in data["policies"]] == ["navrun@3", "exported"]
    assert {len(r["episodes"]) for r in data["results"]} == {2}
    conn = duckdb.connect(str(db), read_only=True)
    rows = conn.execute("SELECT label, run, epoch, agent_step, checksum FROM policies ORDER BY label").fetchall()
    assert conn.execute("SELECT count(*) FROM episodes").fetchone()[0] == 8
    conn.close()
    checkpoint = policies["run"] / "checkpoints" / "epoch_000003"
    assert rows == [("exported", None, None, None, sha256_file(policies["exported"] / "policy.safetensors")),
                    ("navrun@3", "navrun", 3, 4096, sha256_file(checkpoint / "policy.safetensors"))]


@pytest.mark.parametrize("extra, message", [
    (["--suite", "navigaton"], "unknown suite 'navigaton'; did you mean 'navigation'?"),
    (["--suite", "navigation", "--simulation", "coridors"],
     "suite navigation has no simulation 'coridors'; did you mean 'corridors'?"),
    (["--suite", "navigation", "--num-envs", "4"], "--num-envs does not apply with --suite"),
    (["game.max_steps=5", "--suite", "navigation"], "overrides such as 'game.max_steps=5' are not accepted"),
    (["--stats-db", "x.duckdb"], "--stats-db needs --suite SUITE"),
    (["--suite", "navigation", "--episodes", "0"], "--episodes must be at least 1, got 0"),
])
def test_eval_usage_errors_exit_2(policies: dict[str, Path], extra: list[str], message: str, capsys):
    assert cli.main(["eval", str(policies["exported"]), *extra, "--device", "cpu"]) == 2
    assert message in capsys.readouterr().err


def test_a_policy_that_cannot_play_the_suite_is_exit_2(policies: dict[str, Path], tmp_path: Path, capsys):
    code = cli.main(["eval", str(policies["narrow"]), "--suite", "navigation", "--simulation", "maze_small",
                     "--episodes", "1", "--device", "cpu"])
    assert code == 2
    assert "built for 7x7 observations, got 11x11" in capsys.readouterr().err
    assert cli.main(["eval", str(tmp_path / "nothing"), "--suite", "navigation"]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_a_damaged_database_keeps_the_evaluations_rows(policies: dict[str, Path], tmp_path: Path, capsys):
    db = tmp_path / "evals.duckdb"
    db.write_bytes(b"not a database at all" * 50)
    argv = ["eval", str(policies["exported"]), "--suite", "navigation", "--simulation", "maze_small",
            "--episodes", "2", "--device", "cpu", "--stats-db", str(db)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    (shard,) = pending_shards(db)
    assert "not a readable DuckDB database" in err and f"rows are kept in {shard}" in err
    shutil.move(db, tmp_path / "aside.duckdb")  # what the message says to do
    assert cli.main(["stats", str(db), "scorecard"]) == 0  # the next read merges the kept shard
    assert "navigation/maze_small" in capsys.readouterr().out and pending_shards(db) == []


def test_a_stats_path_that_cannot_be_written_is_a_file_fault(policies: dict[str, Path], tmp_path: Path, capsys):
    # A path under a file is refused before evaluating (exit 2); one the file system refuses
    # (sysfs takes no new files, even from root; read-only in a container) is a file fault
    # when written (exit 4).
    (tmp_path / "file").write_text("")
    argv = ["eval", str(policies["exported"]), "--suite", "navigation", "--simulation", "maze_small",
            "--episodes", "1", "--device", "cpu", "--stats-db"]
    assert cli.main([*argv, str(tmp_path / "file" / "x.duckdb")]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    assert cli.main([*argv, "/sys/x.duckdb"]) == 4
    assert "cannot write /sys/x.duckdb.shards: " in capsys.readouterr().err


@pytest.mark.parametrize(("busy", "threads", "option", "noted"), [
    (1.5, 2, [], True),  # a neighbour took a core the evaluation's second thread needed
    (0.2, 2, [], False),  # a quiet machine
    (1.5, 1, [], False),  # one thread: nothing to give up
    (1.5, 2, ["--torch-threads", "2"], False),  # a count the user chose
])
def test_eval_on_a_crowded_machine_says_which_thread_count_is_faster(
        policies: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys, busy: float, threads: int,
        option: list[str], noted: bool) -> None:
    """eval keeps one thread per core whatever the load (seeded scores must not depend on it),
    and says afterwards when other processes took the cores those threads needed."""
    from heartgrid import threads as threads_module

    monkeypatch.setattr(threads_module.LoadMeter, "read", lambda self: busy)
    monkeypatch.setattr(threads_module, "cores", lambda: [0, 1])
    torch.set_num_threads(threads)  # put back to one by the suite's autouse fixture
    code = cli.main(["eval", str(policies["exported"]), "--suite", "navigation", "--simulation", "maze_small",
                     "--episodes", "1", "--device", "cpu", *option])
    err = capsys.readouterr().err
    assert code == 0, err
    note = ("heartgrid eval: note: other processes kept 1.5 of the 2 cores busy while this evaluation ran on "
            "2 torch threads; --torch-threads 1 is faster on a shared machine")
    assert (note in err) == noted
