"""Typed configs: unknown keys refused, values validated, dotted overrides, CLI exit codes."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from heartgrid.config import GameConfig, OverrideError, RunConfig, TrainerConfig, apply_overrides
from heartgrid.recipes import build_config
from heartgrid.tools.cli import main


def test_unknown_key_is_refused_at_construction():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        TrainerConfig(minibatch_sise=8)


def test_override_sets_nested_fields_dict_keys_and_lists():
    cfg = build_config(
        "arena",
        [
            "trainer.minibatch_size=1024",
            "game.agent.rewards.ore_red=0.2",
            "game.objects.altar.cooldown=5",
            "game.map.room.objects.altar=3",
            "wandb.tags=[\"a\",\"b\"]",
            "wandb.tags.1=c",
        ],
        default_device="cpu",
    )
    assert cfg.trainer.minibatch_size == 1024
    assert cfg.game.agent.rewards == {"heart": 1.0, "ore_red": 0.2}
    assert cfg.game.objects["altar"].cooldown == 5
    assert cfg.game.map.room.objects["altar"] == 3
    assert cfg.wandb.tags == ["a", "c"]


def test_unknown_key_names_key_valid_keys_and_closest_match():
    cfg = build_config("arena", [], default_device="cpu")
    with pytest.raises(OverrideError) as e:
        apply_overrides(cfg, ["trainer.minibatch_sise=8"])
    msg = str(e.value)
    assert "'minibatch_sise'" in msg and "at trainer" in msg
    assert "batch_size" in msg and "bptt_horizon" in msg  # the valid keys at that level
    assert "did you mean 'trainer.minibatch_size'?" in msg
    assert "\n" not in msg


def test_unknown_intermediate_dict_key_is_refused():
    cfg = build_config("arena", [], default_device="cpu")
    # The rest of the key is kept where the corrected path has it.
    with pytest.raises(OverrideError, match="unknown config key 'altr'.*did you mean 'game.objects.altar.cooldown'"):
        apply_overrides(cfg, ["game.objects.altr.cooldown=5"])


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        # Found in another section: at its own level nothing is like it.
        ("trainer.learnig_rate", "did you mean 'trainer.optimizer.learning_rate'?"),
        ("learning_rate", "did you mean 'trainer.optimizer.learning_rate'?"),
        ("ent_coef", "did you mean 'trainer.ent_coef'?"),
        ("seed", "did you mean 'system.seed'?"),
        ("optimizer.lr", "did you mean 'trainer.optimizer'?"),
        # At its own level, named in full.
        ("game.max_step", "did you mean 'game.max_steps'?"),
        ("trainer.optimiser.learning_rate", "did you mean 'trainer.optimizer.learning_rate'?"),
        ("trainer.schedule.ent_coef", "did you mean 'trainer.schedules'?"),
        ("policy.kwarg.memory", "did you mean 'policy.kwargs'?"),
        ("game.agent.reward.heart", "did you mean 'game.agent.rewards.heart'?"),
        # A name found in two places lists both.
        ("epochs", "did you mean 'logging.health_epochs' or 'trainer.update_epochs'?"),
        # Nothing like it anywhere: no guess.
        ("trainer.lr", "no key anywhere in the config is like it"),
        ("lr", "no key anywhere in the config is like it"),
    ],
)
def test_an_unknown_key_is_matched_against_the_whole_config(key, hint):
    with pytest.raises(OverrideError) as e:
        build_config("small_easy_shaped", [f"{key}=0.1"], default_device="cpu")
    msg = str(e.value)
    assert f"; {hint} (valid keys at " in msg and "\n" not in msg


def test_an_unknown_key_inside_a_json_value_gets_the_hint():
    with pytest.raises(OverrideError, match=r"trainer.optimizer.learnig_rate: unknown key; "
                                            r"did you mean 'trainer.optimizer.learning_rate'\?"):
        build_config("small_easy_shaped", ['trainer.optimizer={"learnig_rate": 0.1}'], default_device="cpu")


def test_an_unknown_key_in_a_config_file_gets_the_hint(tmp_path, capsys):
    data = build_config("small_easy_shaped", [], default_device="cpu").model_dump(mode="json")
    data["trainer"]["learnig_rate"] = 0.1
    data["ent_coef"] = 0.01
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    assert main(["diff", str(path), "small_easy_shaped"]) == 2
    err = capsys.readouterr().err
    assert "trainer.learnig_rate: unknown key; did you mean 'trainer.optimizer.learning_rate'?" in err
    assert "ent_coef: unknown key; did you mean 'trainer.ent_coef'?" in err


def test_wrong_type_names_expected_type():
    cfg = build_config("arena", [], default_device="cpu")
    with pytest.raises(OverrideError, match=r"trainer.update_epochs.*expected an integer.*given 'many'"):
        apply_overrides(cfg, ["trainer.update_epochs=many"])


def test_cross_field_rules_only_apply_to_the_final_state():
    # batch first, then a minibatch that divides it: the intermediate state is invalid.
    cfg = build_config(
        "arena", ["trainer.batch_size=12288", "trainer.minibatch_size=4096"], default_device="cpu"
    )
    assert (cfg.trainer.batch_size, cfg.trainer.minibatch_size) == (12288, 4096)


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.minibatch_size=1000", "must divide trainer.batch_size=6144; for example set trainer.minibatch_size=768"),
        ("trainer.bptt_horizon=48", "trainer.bptt_horizon=48 must divide trainer.minibatch_size"),
        ("trainer.num_envs=5", "must be a multiple of the 120 agent slots"),
        ("game.num_agents=25", "game.num_agents=25 but the map holds 4 instance"),
        ("game.obs_width=10", "observation size must be odd"),
        ("game.agent.rewards.ore_redd=1", "unknown item(s) ['ore_redd']"),
        ("system.device=tpu", "system.device must be auto, cpu, cuda or cuda:N"),
        ("policy.name=fastt", "unknown policy 'fastt'; use one of ['conv_lstm', 'fast'"),
        ("game.map.room.objects.wall=700", "a 25x25 room has 625 cells but game.map.room places 6 agents and 740 objects"),
        ("game.agent.rewards.ore_red=NaN", "Input should be a finite number"),
        (
            'trainer.schedules={"learning_rate": {"type": "exponential", "initial": 0.001, "final": 0}}',
            "an exponential schedule needs initial and final > 0",
        ),
    ],
)
def test_validation_errors_say_what_to_change(override, message):
    with pytest.raises(OverrideError) as e:
        build_config("arena", [override], default_device="cpu")
    assert message in str(e.value)


def test_required_key_names_exist():
    flat = RunConfig().model_dump()
    for dotted in [
        "run", "data_dir", "system.device", "system.seed", "trainer.total_timesteps",
        "trainer.num_envs", "trainer.batch_size", "trainer.minibatch_size",
        "trainer.bptt_horizon", "trainer.update_epochs", "trainer.checkpoint_interval",
        "trainer.keep_last_n", "policy.name", "game.max_steps", "game.num_agents",
    ]:
        node = flat
        for part in dotted.split("."):
            assert part in node, dotted
            node = node[part]


def test_auto_device_is_resolved_before_the_recipe_runs():
    cfg = build_config("arena", ["system.device=cpu"])
    assert cfg.system.device == "cpu"
    assert build_config("arena", ["system.device=auto"], default_device="auto").system.device in ("cpu", "cuda")


def test_group_overrides_only_what_they_set_and_survive_round_trip():
    game = GameConfig.model_validate(
        {
            "agent": {"rewards": {"ore_red": 0.1, "heart": 1.0}, "freeze_duration": 7},
            "groups": {"red": {"id": 0, "props": {"rewards": {"heart": 2.0}}}},
            "num_agents": 6,
            "map": {"room": {"kind": "random", "agents": 6, "objects": {}}},
        }
    )
    resolved = game.group_agent_config("red")
    assert resolved.rewards == {"ore_red": 0.1, "heart": 2.0}  # shaped reward kept, heart overridden
    assert resolved.freeze_duration == 7  # not set by the group: inherited
    reloaded = GameConfig.model_validate_json(game.model_dump_json())
    assert reloaded == game
    assert reloaded.group_agent_config("red") == resolved


# ---- the CLI -----------------------------------------------------------------------------


def test_cli_unknown_key_exits_2(capsys):
    assert main(["config", "arena", "trainer.minibatch_sise=8"]) == 2
    err = capsys.readouterr().err
    assert "minibatch_sise" in err and "did you mean 'trainer.minibatch_size'" in err


def test_cli_wrong_type_exits_2(capsys):
    assert main(["config", "arena", "game.max_steps=long"]) == 2
    assert "expected an integer" in capsys.readouterr().err


def test_cli_unknown_recipe_exits_2_and_lists_recipes(capsys):
    assert main(["config", "arenna"]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'arenna'" in err and "arena_basic_easy_shaped" in err


@pytest.mark.parametrize("argv", [["train", "small_easy_shapd"], ["config", "small_easy_shapd"]])
def test_cli_misspelled_recipe_suggests_the_closest(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"heartgrid {argv[0]}: error: unknown recipe 'small_easy_shapd'; "
                          "did you mean 'small_easy_shaped'? (available recipes: arena, ")
    assert "\n" not in err


@pytest.mark.parametrize("verb", [["config"], ["train"], ["render"], ["bench", "train"]])
def test_cli_missing_recipe_asks_for_the_recipe_only(verb, capsys):
    """Overrides are optional: the usage error names the recipe alone."""
    with pytest.raises(SystemExit) as exit_info:
        main(verb)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "required: recipe" in err and "key=value" not in err.splitlines()[-1]


def test_cli_recipes_lists_one_line_each(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = [line.split()[0] for line in lines]
    assert "arena_basic_easy_shaped" in names and "small_easy_shaped" in names
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)  # a summary on each line


def test_cli_config_prints_resolved_json(capsys):
    assert main(["config", "arena_basic_easy_shaped", "system.device=cpu", "trainer.gamma=0.99"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["trainer"]["gamma"] == 0.99
    assert data["game"]["agent"]["rewards"]["battery_red"] == 0.8
    assert RunConfig.model_validate(data).trainer.gamma == 0.99


def test_null_sets_none_and_none_stays_a_word():
    cfg = build_config("arena", ["trainer.target_kl=0.02", "logging.console=none"], default_device="cpu")
    assert cfg.trainer.target_kl == 0.02 and cfg.logging.console == "none"
    assert apply_overrides(cfg, ["trainer.target_kl=null"]).trainer.target_kl is None


def test_minibatch_suggestion_is_itself_valid():
    with pytest.raises(OverrideError) as e:
        build_config("arena", ["system.device=cuda", "trainer.minibatch_size=100"])
    suggested = int(str(e.value).rsplit("trainer.minibatch_size=", 1)[1].split()[0])
    cfg = build_config("arena", ["system.device=cuda", f"trainer.minibatch_size={suggested}"])
    assert cfg.trainer.minibatch_size == suggested


def test_numbers_are_taken_as_text_by_string_fields():
    assert build_config("arena", ["run=123"], default_device="cpu").run == "123"


def test_cli_python_m_entry_point_maps_usage_errors_to_2():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "heartgrid.tools.cli", "config", "nope"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "unknown recipe 'nope'" in done.stderr


def test_overriding_a_game_value_the_curriculum_sets_per_task_is_refused():
    with pytest.raises(OverrideError) as e:
        build_config("arena_basic_easy_shaped", ["game.agent.rewards.ore_red=0.2"], default_device="cpu")
    msg = str(e.value)
    assert "set per task by the curriculum" in msg and "'agent.rewards.ore_red'" in msg
    assert 'curriculum.tasks={"kind": "single"}' in msg
    # Following the advice works, and values the curriculum does not touch stay overridable.
    cfg = build_config("arena_basic_easy_shaped", [
        "game.agent.rewards.ore_red=0.2", 'curriculum.tasks={"kind": "single"}'], default_device="cpu")
    assert cfg.game.agent.rewards["ore_red"] == 0.2
    assert build_config("arena_basic_easy_shaped", ["game.agent.rewards.heart=2"],
                        default_device="cpu").game.agent.rewards["heart"] == 2


def test_an_unknown_item_suggests_the_closest():
    with pytest.raises(OverrideError, match="did you mean 'ore_red'"):
        build_config("small_cardinal", ["game.agent.rewards.ore_redd=0.2"], default_device="cpu")


@pytest.mark.parametrize(("override", "message"), [
    ("policy.kwargs.action_haed=linear", "did you mean 'action_head' for 'action_haed'?"),
    ("policy.kwargs.action_head=linaer", "action_head must be one of ['bilinear', 'linear'], got 'linaer'"),
])
@pytest.mark.parametrize("verb", ["config", "train"])
def test_cli_bad_policy_kwargs_are_usage_errors(verb, override, message, tmp_path, capsys):
    """Found before anything is trained or written (no run directory appears)."""
    assert main([verb, "small_cardinal", override, f"data_dir={tmp_path}"]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
