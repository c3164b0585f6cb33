"""A resolved config saved as JSON loads back equal, with every inherited default written out."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heartgrid.config import RunConfig, apply_overrides
from heartgrid.config.diff import diff_configs, flatten
from heartgrid.config.items import ITEMS
from heartgrid.recipes import all_recipes
from heartgrid.recipes import build_config

RECIPES = sorted(all_recipes())

# Overrides a researcher might give; each strategy yields a valid key=value.
OVERRIDES = st.one_of(
    st.builds(lambda item, r: f"game.agent.rewards.{item}={r}", st.sampled_from(ITEMS),
              st.floats(-2, 2, allow_nan=False).map(lambda x: round(x, 3))),
    st.builds(lambda item, c: f"game.agent.reward_caps.{item}={c}", st.sampled_from(ITEMS),
              st.floats(0, 10, allow_nan=False).map(lambda x: round(x, 3))),
    st.builds(lambda n: f"game.objects.altar.cooldown={n}", st.integers(0, 300)),
    st.builds(lambda n: f"game.objects.mine_red.max_output={n}", st.integers(-1, 20)),
    st.builds(lambda n: f"game.max_steps={n}", st.integers(1, 5000)),
    st.builds(lambda g: f"trainer.gamma={g}", st.floats(0, 1).map(lambda x: round(x, 4))),
    st.builds(lambda v: f"trainer.value_target={v}", st.sampled_from(["rollout", "refreshed"])),
    st.builds(lambda v: f"trainer.advantage_norm={v}", st.sampled_from(["minibatch", "global", "off"])),
    st.builds(lambda b: f"game.actions.move_8way.enabled={str(b).lower()}", st.booleans()),
    st.builds(lambda b: f"game.desync_episodes={str(b).lower()}", st.booleans()),
    st.builds(lambda s: f"system.seed={s}", st.integers(0, 2**31)),
    st.builds(lambda p: f"game.groups.agent.group_reward_pct={p}", st.floats(0, 1).map(lambda x: round(x, 3))),
    st.builds(lambda r: f"game.groups.agent.props.rewards.heart={r}", st.floats(0, 3).map(lambda x: round(x, 3))),
)


def assert_same(before, after, what: str) -> None:
    """Equal, or a message naming the first field path that differs (not a bare a == b)."""
    rows = diff_configs(before.model_dump(mode="json"), after.model_dump(mode="json"))
    assert not rows, f"{what} differs first at {rows[0][0]}: {rows[0][1]!r} -> {rows[0][2]!r}"
    assert before == after, f"{what} differs in a value that JSON does not show (a type)"


def first_different_line(a: str, b: str) -> str:
    for number, (x, y) in enumerate(zip(a.splitlines(), b.splitlines()), start=1):
        if x != y:
            return f"the JSON differs first at line {number}: {x.strip()!r} -> {y.strip()!r}"
    return "the JSON texts differ in length"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipe=st.sampled_from(RECIPES), overrides=st.lists(OVERRIDES, max_size=6))
def test_json_round_trip_is_exact(recipe, overrides):
    base = build_config(recipe, [], default_device="cpu")
    config = apply_overrides(base, overrides)
    text = config.to_json()
    reloaded = RunConfig.from_json(text)
    assert_same(config, reloaded, "the reloaded config")
    assert reloaded.to_json() == text, first_different_line(text, reloaded.to_json())
    # Every group resolves to the same agent config after the round trip (the reference bug).
    for group in config.game.groups:
        assert_same(config.game.group_agent_config(group), reloaded.game.group_agent_config(group),
                    f"group {group!r}'s agent config")


def test_defaults_are_written_out_in_full():
    config = build_config("arena", [], default_device="cpu")
    data = json.loads(config.to_json())
    flat = flatten(data)
    # Defaults that were never "set" by the recipe still appear with their values.
    assert flat["trainer.gamma"] == 0.977
    assert flat["trainer.value_target"] == "rollout"
    assert flat["game.objects.mine_red.cooldown"] == 50
    assert flat["game.actions.move_8way.enabled"] is False
    # And the model has no notion of "unset": a freshly built default equals the loaded one.
    assert RunConfig.model_validate(data).model_fields_set >= {"game", "trainer"}
