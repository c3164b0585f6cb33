"""Suites: the built-ins resolve to playable games with fixed identities; user suites load from
JSON, YAML and Python, validated like configs; unknown names are usage errors that say what exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from heartgrid.evaluation.resolve import SuiteError, resolve_simulation
from heartgrid.evaluation.simulation import SimulationConfig
from heartgrid.evaluation.suites import load_suite, select, suite_names
from heartgrid.tools import cli

ROOM = "max_steps: 33\ndescription: two altars\n\n#####\n#@._#\n#_..#\n#####\n"


def test_builtin_suites_and_their_simulations():
    assert {"arena", "navigation", "procgen"} <= set(suite_names())
    arena = load_suite("arena")
    assert [s.key for s in arena.config.simulations] == [
        "arena/basic", "arena/basic_easy_shaped", "arena/combat", "arena/advanced"]
    for sim in arena.resolve():
        assert sim.game.num_agents == 24 and sim.max_steps == 1000 and not sim.game.desync_episodes
        assert sim.reference(sim.game) == 20.0 and sim.config.metric == "heart.get"
    navigation = load_suite("navigation").resolve()
    assert len(navigation) >= 12
    for sim in navigation:
        assert sim.max_steps == sim.map_file.max_steps  # each map's own time limit
        # Normalised by the map's hearts: altars (one heart each) per agent.
        assert sim.reference(sim.game) == pytest.approx(sim.map_file.altars / sim.map_file.agents)
        enabled = {n for n, a in sim.game.actions.model_dump().items() if a["enabled"]}
        assert enabled == {"move", "rotate", "get_items"}


def test_a_simulation_has_a_stable_identity():
    (a,), (b,) = (select(load_suite("navigation"), ["corridors"]).resolve() for _ in range(2))
    assert a.config_hash == b.config_hash and len(a.config_hash) == 64
    more = resolve_simulation(a.config.model_copy(update={"episodes": 99, "description": "x"}), "navigation")
    assert more.config_hash == a.config_hash  # the episode count does not change the maps
    reseeded = resolve_simulation(a.config.model_copy(update={"seed": 1}), "navigation")
    assert reseeded.config_hash != a.config_hash


def test_simulations_are_picked_by_key_or_name():
    suite = select(load_suite("navigation"), ["navigation/maze_small", "radial", "maze_small"])
    assert [s.key for s in suite.config.simulations] == ["navigation/maze_small", "navigation/radial"]
    with pytest.raises(SuiteError, match=r"suite navigation has no simulation 'maze_smal'; did you mean 'maze_small'\?"):
        select(load_suite("navigation"), ["maze_smal"])


def test_user_suites_from_json_yaml_and_python(tmp_path: Path):
    (tmp_path / "room.map").write_text(ROOM)
    spec = {"name": "mine", "simulations": [
        {"category": "nav", "name": "room", "recipe": "navigation_maze", "map": "room.map", "episodes": 2},
        {"category": "nav", "name": "maze", "recipe": "navigation_maze",
         "generator": {"kind": "maze", "width": 7, "height": 7, "altars": 1}, "max_steps": 40},
        {"category": "arena", "name": "short", "recipe": "arena", "overrides": ["game.max_steps=10"],
         "metric": "heart.get", "reference": None},
    ]}
    (tmp_path / "mine.json").write_text(json.dumps(spec))
    import yaml

    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "mine.py").write_text(f"import json\nSUITE = json.loads({json.dumps(json.dumps(spec))})\n")
    for name in ("mine.json", "mine.yaml", "mine.py"):
        loaded = load_suite(str(tmp_path / name))
        room, maze, short = loaded.resolve()
        assert (room.max_steps, room.game.num_agents, room.reference(room.game)) == (33, 1, 2.0)
        assert maze.max_steps == 40 and maze.game.map.room.rows != maze.games(2)[1].map.room.rows
        assert short.max_steps == 10 and short.reference(short.game) is None
        assert "not normalised" in short.normalisation


@pytest.mark.parametrize("body, message", [
    ({"name": "x", "simulations": [{"category": "a", "name": "b", "recipe": "arena", "episode": 3}]},
     "episode"),
    ({"name": "x", "simulations": [{"category": "a", "name": "b", "recipe": "arean"}]},
     "unknown recipe 'arean'; did you mean 'arena'"),
    ({"name": "x", "simulations": [{"category": "a", "name": "b", "recipe": "arena", "metric": "heart.got"}]},
     "unknown metric 'heart.got'; did you mean 'heart.get'"),
    ({"name": "x", "simulations": [{"category": "a", "name": "b", "recipe": "arena", "map": "navigation/nope"}]},
     "map 'navigation/nope' is neither a shipped map nor a file"),
    ({"name": "x", "simulations": []}, "at least 1 item"),
])
def test_invalid_user_suites_are_refused(tmp_path: Path, body: dict, message: str):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(body))
    with pytest.raises(SuiteError, match=message):
        load_suite(str(path)).resolve()


def test_a_simulation_needs_one_room_source():
    with pytest.raises(ValueError, match="either `map` or `generator`"):
        SimulationConfig(category="a", name="b", recipe="navigation_maze", map="navigation/radial",
                         generator={"kind": "maze", "width": 7, "height": 7})


def test_suites_command(capsys: pytest.CaptureFixture, tmp_path: Path):
    assert cli.main(["suites"]) == 0
    out = capsys.readouterr().out
    navigation_line = next(line for line in out.splitlines() if line.startswith("navigation"))
    assert navigation_line.split()[1] == "14"
    assert cli.main(["suites", "navigation"]) == 0
    out = capsys.readouterr().out
    assert "navigation/memory" in out and "share of the map's hearts collected" in out
    assert cli.main(["suites", "arena", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["simulation"] for s in data["simulations"]][0] == "arena/basic"
    assert cli.main(["suites", "arnea"]) == 2
    assert "unknown suite 'arnea'; did you mean 'arena'?" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("name: x\nsimulations:\n  - {category: a, name: b, recipe: arena, color: red}\n")
    assert cli.main(["suites", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "invalid suite" in err and "color" in err


@pytest.mark.parametrize(("ref", "message"), [
    (":x", "suite ':x': cannot import module '' (Empty module name)"),
    ("json:loads", "suite json:loads: loads must be a SuiteConfig, a dict, or a function of no arguments "
                   "returning one"),
])
def test_a_module_reference_that_names_no_suite_is_refused(ref: str, message: str):
    with pytest.raises(SuiteError, match=re.escape(message)):
        load_suite(ref)


def test_a_file_of_another_kind_is_not_taken_for_a_module(tmp_path: Path):
    (tmp_path / "suite.txt").write_text("x")
    with pytest.raises(SuiteError, match=re.escape(f"suite file {tmp_path / 'suite.txt'}: a suite file is .json, .yaml, .yml or .py")):
        load_suite(str(tmp_path / "suite.txt"))
