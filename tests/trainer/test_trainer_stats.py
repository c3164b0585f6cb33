"""Stats accumulation accepts any mix of types without losing or corrupting a value
(dehydration investigation §11: a float followed by a list crashed and lost overview/reward)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from heartgrid.trainer.stats import StatsAccumulator, flatten_values


def test_mixed_types_under_one_name_keep_every_value_in_order():
    stats = StatsAccumulator()
    stats.add("task_reward/a/rewards.mean", 1.5)                     # float
    stats.add("task_reward/a/rewards.mean", [2.0, 3.0])              # list
    stats.add("task_reward/a/rewards.mean", np.array([[4.0], [5.0]]))  # 2-D array
    stats.add("task_reward/a/rewards.mean", torch.tensor([6, 7]))    # int tensor
    stats.add("task_reward/a/rewards.mean", torch.tensor(8.0))       # 0-d tensor
    stats.add("task_reward/a/rewards.mean", np.float32(9.0))         # NumPy scalar
    stats.add("task_reward/a/rewards.mean", (10, [11.0, np.int64(12)]))  # nested
    stats.add("task_reward/a/rewards.mean", True)                    # bool
    assert stats.values("task_reward/a/rewards.mean") == [1.5, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1]
    assert stats.means()["task_reward/a/rewards.mean"] == pytest.approx(79.5 / 13)


def test_list_first_then_scalar():
    stats = StatsAccumulator()
    stats.add("x", [1.0, 2.0])
    stats.add("x", 3)
    assert stats.values("x") == [1.0, 2.0, 3.0]


def test_empty_values_add_nothing_and_names_are_independent():
    stats = StatsAccumulator()
    stats.add("a", [])
    stats.add("a", torch.empty(0))
    stats.add("b", 1)
    assert "a" not in stats and stats.names() == ["b"]
    assert stats.means() == {"b": 1.0}


def test_add_dict_prefix_clear_and_state_round_trip():
    stats = StatsAccumulator()
    stats.add_dict({"heart.get": torch.tensor([1.0, 3.0]), "ore_red.gained": 2}, prefix="env_agent/")
    assert stats.means() == {"env_agent/heart.get": 2.0, "env_agent/ore_red.gained": 2.0}
    copy = StatsAccumulator()
    copy.load_state_dict(stats.state_dict())
    assert copy.means() == stats.means()
    stats.clear()
    assert stats.means() == {}


def test_mean_does_not_depend_on_arrival_order():
    values = [1e16, 1.0, -1e16, 1.0]
    forward, backward = StatsAccumulator(), StatsAccumulator()
    forward.add("x", values)
    backward.add("x", list(reversed(values)))
    assert forward.means()["x"] == backward.means()["x"] == 0.5


def test_unsupported_type_is_refused_with_a_clear_message():
    with pytest.raises(TypeError, match="cannot accumulate a statistic of type str"):
        flatten_values("12")
    with pytest.raises(TypeError, match="dict"):
        flatten_values({"a": 1})
