"""`heartgrid diff`: recipes with overrides, config JSON files and run directories."""

from __future__ import annotations

from heartgrid.config.diff import diff_configs, flatten
from heartgrid.recipes import build_config
from heartgrid.tools.cli import main


def test_identical_sides_exit_0(capsys):
    assert main(["diff", "arena", "arena"]) == 0
    assert capsys.readouterr().out == ""


def test_differences_are_sorted_one_per_line_and_exit_1(capsys):
    code = main(["diff", "arena trainer.gamma=0.99", "arena game.agent.rewards.ore_red=0.2"])
    assert code == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == sorted(lines)
    assert "game.agent.rewards.ore_red: \"<absent>\" -> 0.2" in lines
    assert "trainer.gamma: 0.99 -> 0.977" in lines
    assert len(lines) == 2


def test_diff_accepts_json_files_and_run_directories(tmp_path, capsys):
    a = build_config("small_easy_shaped", [], default_device="cpu")
    b = build_config("small_easy_shaped", ["game.actions.move_8way.enabled=true"], default_device="cpu")
    (tmp_path / "a.json").write_text(a.to_json())
    run_dir = tmp_path / "run_b"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(b.to_json())
    assert main(["diff", str(tmp_path / "a.json"), str(run_dir)]) == 1
    assert capsys.readouterr().out.strip() == "game.actions.move_8way.enabled: false -> true"


def test_diff_of_a_directory_without_config_is_a_usage_error(tmp_path, capsys):
    assert main(["diff", str(tmp_path), "arena"]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_flatten_and_ignore():
    a = build_config("arena", [], default_device="cpu")
    b = build_config("arena", ["system.seed=3", "run=other"], default_device="cpu")
    assert {p for p, _, _ in diff_configs(a, b)} == {"system.seed", "run"}
    assert diff_configs(a, b, ignore=("system.seed", "run")) == []
    assert flatten(a)["game.map.room.objects.mine_red"] == 10
