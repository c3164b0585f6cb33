"""The writers from the command line: `heartgrid eval ... --replays DIR` (a recipe, a suite) and
`heartgrid render RECIPE --policy URI --replay FILE`; the replays they write read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from heartgrid.checkpoint import CheckpointManager, save_policy
from heartgrid.config.run import PolicyConfig
from heartgrid.engine.batched import BatchedEngine
from heartgrid.policies import make_policy
from heartgrid.recipes import build_config
from heartgrid.replay.format import find_replays, read_replay
from heartgrid.replay.reader import ReplayState
from heartgrid.tools import cli


def small_policy(recipe: str) -> torch.nn.Module:
    engine = BatchedEngine(build_config(recipe, ["system.device=cpu"]).game, 1)
    torch.manual_seed(0)
    return make_policy(PolicyConfig(hidden_size=16, lstm_layers=1), engine.features,
                       engine.action_names, engine.obs_shape)


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("policies")
    run = root / "cardrun"
    CheckpointManager(run).save(3, 4096, small_policy("small_cardinal"), {"epoch": 3})
    return {"run": run, "nav": save_policy(root / "nav", small_policy("navigation_maze"))}


def test_eval_on_a_recipe_writes_one_replay(policies: dict[str, Path], tmp_path: Path, capsys):
    out = tmp_path / "replays"
    code = cli.main(["eval", str(policies["run"]), "small_cardinal", "game.max_steps=25", "--episodes", "3",
                     "--num-envs", "2", "--device", "cpu", "--replays", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (path,) = find_replays(out)
    assert json.loads(captured.out.splitlines()[-1])["replays"] == [str(path)]
    assert path.name == "cardrun-3__small_cardinal__ep0.hgreplay"
    assert f"replays: 1 written to {out}" in captured.out
    document = read_replay(path)
    meta = document["meta"]
    assert (meta["source"], meta["recipe"], meta["policy"]) == ("eval", "small_cardinal", str(policies["run"]))
    assert (meta["epoch"], meta["agent_step"], meta["env"], meta["episode"]) == (3, 4096, 0, 0)
    assert len(ReplayState(document)) == 25 and document["end"] == "truncated"


def test_eval_replay_episodes(policies: dict[str, Path], tmp_path: Path, capsys):
    out = tmp_path / "replays"
    code = cli.main(["eval", str(policies["run"]), "small_cardinal", "game.max_steps=10", "--episodes", "2",
                     "--device", "cpu", "--replays", str(out), "--replay-episodes", "2"])
    assert code == 0, capsys.readouterr().err
    paths = find_replays(out)
    assert [p.name.rsplit("__", 1)[1] for p in paths] == ["ep0.hgreplay", "ep1.hgreplay"]
    assert [read_replay(p)["meta"]["env"] for p in paths] == [0, 1]


def test_eval_on_a_suite_writes_one_replay_per_simulation(policies: dict[str, Path], tmp_path: Path, capsys):
    out = tmp_path / "replays"
    code = cli.main(["eval", str(policies["nav"]), "--suite", "navigation", "--simulation", "maze_small",
                     "--simulation", "navigation/emptyspace_withinsight", "--episodes", "2",
                     "--device", "cpu", "--replays", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    paths = find_replays(out)
    assert [p.name for p in paths] == ["nav__navigation__emptyspace_withinsight__ep0.hgreplay",
                                       "nav__navigation__maze_small__ep0.hgreplay"]
    assert f"replays: 2 written to {out}" in captured.out
    for path in paths:
        document = read_replay(path)
        assert document["meta"]["task"] == "navigation/" + path.name.split("__")[2]
        assert document["meta"]["recipe"] and document["end"] == "truncated"
        assert len(ReplayState(document)) == document["game"]["max_steps"]


def test_render_with_a_policy_writes_a_replay(policies: dict[str, Path], tmp_path: Path, capsys):
    path = tmp_path / "watch.hgreplay"
    code = cli.main(["render", "small_cardinal", "game.max_steps=30", "--policy", str(policies["run"]),
                     "--replay", str(path), "--seed", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    frames = [b for b in captured.out.split("\n\n") if b.startswith("step ")]
    assert len(frames) == 31 and frames[-1].startswith("step 30/30")
    assert "episode ended (truncated) after 30 steps" in captured.out
    document = read_replay(path)
    assert (document["meta"]["source"], document["meta"]["policy"]) == ("render", str(policies["run"]))
    assert document["meta"]["seed"] == 2 and len(document["steps"]) == 30
    # The last frame draws the replay's last state: every agent where the replay puts it.
    state = ReplayState(document).at(30)
    grid = frames[-1].splitlines()[1:10]
    for row, col in (o[1:] for o in state["objects"][:2]):
        assert grid[row][col] in "^v<>*"


def test_replays_of_games_with_npcs_show_them_and_name_them(policies: dict[str, Path], tmp_path: Path, capsys):
    # render: the NPC agent (1 of 2) plays scripted:noop, the policy the other.
    npcs = ["game.policy_agents_pct=0.5", "game.npc_policy_uri=scripted:noop"]
    path = tmp_path / "render.hgreplay"
    assert cli.main(["render", "small_easy_shaped", *npcs, "--policy", "random", "--steps", "20",
                     "--quiet", "--replay", str(path)]) == 0, capsys.readouterr().err
    document = read_replay(path)
    assert (document["meta"]["npc_policy"], document["meta"]["npc_agents"]) == ("scripted:noop", [1])
    noop = document["actions"].index("noop_0")
    assert all(step["a"][1] == noop for step in document["steps"])
    assert {step["a"][0] for step in document["steps"]} != {noop}
    # eval: its replays name the NPCs too.
    out = tmp_path / "replays"
    assert cli.main(["eval", str(policies["run"]), "small_cardinal", "game.max_steps=10", *npcs[:1],
                     "game.npc_policy_uri=scripted:random", "--episodes", "1", "--device", "cpu",
                     "--replays", str(out)]) == 0, capsys.readouterr().err
    (path,) = find_replays(out)
    assert (read_replay(path)["meta"]["npc_policy"], read_replay(path)["meta"]["npc_agents"]) == ("scripted:random", [1])


def test_render_random_quiet_and_cut(tmp_path: Path, capsys):
    path = tmp_path / "r.hgreplay"
    assert cli.main(["render", "arena", "--policy", "random", "--steps", "5", "--quiet",
                     "--replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "step 0/" not in out and "episode was cut after 5 steps" in out
    document = read_replay(path)
    assert document["end"] == "cut" and len(document["steps"]) == 5 and document["num_agents"] == 24


@pytest.mark.parametrize("argv, message", [
    (["render", "small_cardinal", "--replay", "x.hgreplay"], "--replay needs --policy URI"),
    (["render", "small_cardinal", "--policy", "nowhere/at/all"], "no such file or directory"),
    (["render", "arena", "--policy", "RUN", "--steps", "1"], "built for 7x7 observations"),
    (["eval", "RUN", "small_cardinal", "--replay-episodes", "2"], "--replay-episodes needs --replays DIR"),
    (["eval", "RUN", "small_cardinal", "--replays", "FILE"], "not a directory"),
    # Output paths under a file are refused before anything is played, not after.
    (["render", "small_cardinal", "--policy", "random", "--replay", "FILE/x.hgreplay"],
     "--replay FILE/x.hgreplay: FILE is a file, not a directory"),
    (["eval", "RUN", "--suite", "navigation", "--out", "FILE/o.json"],
     "--out FILE/o.json: FILE is a file, not a directory"),
    (["eval", "RUN", "--suite", "navigation", "--stats-db", "FILE/x.duckdb"],
     "--stats-db FILE/x.duckdb: FILE is a file, not a directory"),
    (["eval", "RUN", "small_cardinal", "--replays", "DIR", "--replay-episodes", "0"],
     "--replay-episodes must be at least 1"),
])
def test_usage_errors_exit_2(policies: dict[str, Path], tmp_path: Path, argv: list[str], message: str, capsys):
    (tmp_path / "file").write_text("")
    names = {"NAV": str(policies["nav"]), "RUN": str(policies["run"]), "DIR": str(tmp_path / "d"),
             "FILE": str(tmp_path / "file")}
    argv = [names.get(a, a.replace("FILE/", names["FILE"] + "/")) for a in argv]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert message.replace("FILE", names["FILE"]) in captured.err
    assert "episode" not in captured.out  # refused before playing


def test_a_replay_directory_that_cannot_be_made_is_a_file_fault(policies: dict[str, Path], tmp_path: Path, capsys):
    code = cli.main(["eval", str(policies["run"]), "small_cardinal", "--replays", "/sys/replays"])
    assert code == 4
    err = capsys.readouterr().err
    assert "cannot write /sys/replays: " in err and "choose another --replays directory" in err
