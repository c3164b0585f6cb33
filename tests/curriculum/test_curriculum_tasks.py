"""Task generators: single, weighted set, bucketed (lists and ranges), composition, names."""

from __future__ import annotations

from collections import Counter

import pytest

from heartgrid.config.curriculum import (
    BucketedTaskConfig,
    RangeConfig,
    SingleTaskConfig,
    TaskSetConfig,
    WeightedTaskConfig,
)
from heartgrid.config.game import GameConfig
from heartgrid.curriculum.tasks import get_path, make_task_generator, short_labels
from heartgrid.recipes.arena import arena_curriculum, arena_game
from heartgrid.recipes.small import small_game


@pytest.fixture(scope="module")
def game() -> GameConfig:
    return small_game()


def bucketed(buckets: dict, child=None) -> BucketedTaskConfig:
    return BucketedTaskConfig(child=child or SingleTaskConfig(name="small"), buckets=buckets)


def test_single_task_is_the_run_game(game):
    generator = make_task_generator(SingleTaskConfig(), game)
    task = generator.make_task(3, seed=11)
    assert (task.id, task.seed, task.name) == (3, 11, "default")
    assert task.game == game
    assert generator.num_distinct() == 1


def test_single_task_with_its_own_game(game):
    own = game.model_copy(update={"max_steps": 77})
    task = make_task_generator(SingleTaskConfig(name="short", game=own), game).make_task(0, 0)
    assert task.name == "short" and task.game.max_steps == 77


def test_short_labels_are_the_shortest_unique_suffixes():
    paths = [
        "agent.rewards.ore_red",
        "agent.reward_caps.ore_red",
        "agent.rewards.heart",
        "actions.attack.consumed_resources.laser",
        "objects.altar.initial_resource_count",
        "objects.mine_red.initial_resource_count",
        "max_steps",
    ]
    assert short_labels(paths) == {
        "agent.rewards.ore_red": "rewards.ore_red",
        "agent.reward_caps.ore_red": "reward_caps.ore_red",
        "agent.rewards.heart": "heart",
        "actions.attack.consumed_resources.laser": "laser",
        "objects.altar.initial_resource_count": "altar.initial_resource_count",
        "objects.mine_red.initial_resource_count": "mine_red.initial_resource_count",
        "max_steps": "max_steps",
    }


def test_bucket_values_are_applied_and_named_when_changed(game):
    config = bucketed({"agent.rewards.ore_red": [0.1, 0.5], "objects.altar.cooldown": [5, 9]})
    generator = make_task_generator(config, game)
    assert generator.num_distinct() == 4
    names = set()
    for seed in range(40):
        task = generator.make_task(seed, seed)
        ore, cooldown = task.game.agent.rewards["ore_red"], task.game.objects["altar"].cooldown
        assert ore in (0.1, 0.5) and cooldown in (5, 9)
        # The base game has ore_red 0.1 and cooldown 5: only changed values are in the name.
        changes = [c for c, changed in (("ore_red=0.5", ore == 0.5), ("cooldown=9", cooldown == 9)) if changed]
        assert task.name == ("small/" + ",".join(changes) if changes else "small")
        names.add(task.name)
    assert names == {"small", "small/ore_red=0.5", "small/cooldown=9", "small/ore_red=0.5,cooldown=9"}


def test_a_task_is_a_function_of_its_seed(game):
    generator = make_task_generator(bucketed({"agent.rewards.ore_red": RangeConfig(low=0, high=1)}), game)
    first, again = generator.make_task(0, 1234), generator.make_task(5, 1234)
    assert first.name == again.name and first.game == again.game
    assert len({generator.make_task(0, s).name for s in range(20)}) == 20


def test_bucket_on_a_missing_path_fails_at_construction_naming_it(game):
    with pytest.raises(ValueError, match=r"agent\.rewardz\.ore_red.*unknown config key 'rewardz'"):
        make_task_generator(bucketed({"agent.rewardz.ore_red": [0.1]}), game)
    with pytest.raises(ValueError, match=r"objects\.altar\.cooldwn"):
        make_task_generator(bucketed({"objects.altar.cooldwn": RangeConfig(low=1, high=3)}), game)


def test_bucket_with_an_invalid_value_fails_at_construction(game):
    with pytest.raises(ValueError, match=r"bucket 'max_steps' \(value -3\)"):
        make_task_generator(bucketed({"max_steps": [100, -3]}), game)
    with pytest.raises(ValueError, match=r"bucket 'max_steps' has an empty list"):
        make_task_generator(bucketed({"max_steps": []}), game)
    with pytest.raises(ValueError, match=r"low=3.0 > high=1.0"):
        make_task_generator(bucketed({"objects.altar.cooldown": RangeConfig(low=3, high=1)}), game)


def test_integer_range_on_an_integer_field(game):
    generator = make_task_generator(bucketed({"objects.altar.cooldown": RangeConfig(low=2, high=5)}), game)
    assert generator.num_distinct() == 4
    values = Counter(generator.make_task(s, s).game.objects["altar"].cooldown for s in range(200))
    assert set(values) == {2, 3, 4, 5}
    assert all(isinstance(v, int) for v in values)


def test_float_range_is_rounded_and_named_exactly(game):
    generator = make_task_generator(bucketed({"agent.rewards.ore_red": RangeConfig(low=0.2, high=0.3)}), game)
    assert generator.num_distinct() is None
    for seed in range(30):
        task = generator.make_task(seed, seed)
        value = task.game.agent.rewards["ore_red"]
        assert 0.2 <= value <= 0.3
        assert value == float(f"{value:.4g}")
        assert task.name == f"small/ore_red={value:g}"


def test_float_range_on_an_integer_only_new_key_fails_at_construction(game):
    # consumed_resources has no ore_red key, so the range is sampled as floats; counts are ints.
    with pytest.raises(ValueError, match=r"actions\.attack\.consumed_resources\.ore_red"):
        make_task_generator(
            bucketed({"actions.attack.consumed_resources.ore_red": RangeConfig(low=1, high=4)}), game
        )


def test_weighted_set_draws_children_by_weight(game):
    config = TaskSetConfig(children=[
        WeightedTaskConfig(generator=SingleTaskConfig(name="a"), weight=3.0),
        WeightedTaskConfig(generator=SingleTaskConfig(name="b"), weight=1.0),
    ])
    generator = make_task_generator(config, game)
    assert generator.num_distinct() == 2
    counts = Counter(generator.make_task(s, s).name for s in range(4000))
    assert set(counts) == {"a", "b"}
    assert abs(counts["a"] / 4000 - 0.75) < 0.03


def test_set_children_must_have_distinct_names(game):
    config = TaskSetConfig(children=[
        WeightedTaskConfig(generator=SingleTaskConfig()),
        WeightedTaskConfig(generator=bucketed({"max_steps": [10, 20]}, child=SingleTaskConfig())),
    ])
    with pytest.raises(ValueError, match=r"share the task name\(s\) \['default'\]"):
        make_task_generator(config, game)


def test_generators_compose(game):
    # Buckets over a set of two games, one of them itself bucketed.
    long_game = game.model_copy(update={"max_steps": 500})
    inner = TaskSetConfig(children=[
        WeightedTaskConfig(generator=SingleTaskConfig(name="short")),
        WeightedTaskConfig(generator=bucketed(
            {"objects.altar.cooldown": [5, 7]}, child=SingleTaskConfig(name="long", game=long_game)
        )),
    ])
    generator = make_task_generator(bucketed({"agent.rewards.heart": [1.0, 2.0]}, child=inner), game)
    assert generator.num_distinct() == (1 + 2) * 2
    tasks = [generator.make_task(s, s) for s in range(200)]
    names = {t.name for t in tasks}
    assert names == {
        "short", "short/heart=2", "long", "long/heart=2",
        "long/cooldown=7", "long/cooldown=7/heart=2",
    }
    for task in tasks:
        assert task.game.max_steps == (500 if task.name.startswith("long") else 200)
        assert task.game.agent.rewards["heart"] == (2.0 if "heart=2" in task.name else 1.0)


def test_arena_curriculum_tasks():
    base = arena_game(easy=True, shaped=True)
    config = arena_curriculum()
    generator = make_task_generator(config.tasks, base)
    assert generator.num_distinct() == 5**4 * 2**4 * 2 * 2**5
    for seed in range(10):
        task = generator.make_task(seed, seed)
        assert task.name.startswith("arena")
        # Every bucket's value in the game is one of its listed values.
        for path, values in config.tasks.buckets.items():
            assert get_path(task.game, path) in values, path
        # The name lists exactly the values that differ from the base game, with short labels.
        labels = short_labels(list(config.tasks.buckets))
        changed = {
            labels[path]: get_path(task.game, path)
            for path in config.tasks.buckets
            if get_path(task.game, path) != get_path(base, path)
        }
        listed = dict(item.split("=") for item in task.name.removeprefix("arena/").split(","))
        assert listed == {label: f"{value:g}" for label, value in changed.items()}
        assert GameConfig.model_validate(task.game.model_dump()) == task.game
