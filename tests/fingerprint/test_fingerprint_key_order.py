"""A config is what it says, whatever order its keys are in: a config file (written with sorted
keys, `heartgrid config` and every run's config.json) and its recipe play the same game, and
`heartgrid diff`, which compares dicts without order, can be trusted when it finds nothing.
Once, the objects of a random room were placed in the order of `map.room.objects`, the curriculum
drew its buckets in the order of `buckets` and every agent joined the first group listed: a
recipe and its own config.json played different maps."""

from __future__ import annotations

from typing import Any

import pytest

from heartgrid.config.run import RunConfig
from heartgrid.fingerprint import capture, first_divergence
from heartgrid.recipes import build_config


def reversed_dicts(value: Any) -> Any:
    """`value` with every dict's keys in reverse order (lists keep theirs: their order counts)."""
    if isinstance(value, dict):
        return {k: reversed_dicts(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_dicts(v) for v in value]
    return value


# arena_basic_easy_shaped: a random room of several object kinds and a bucketed curriculum;
# navigation: an ASCII room among several (a task set).
@pytest.mark.parametrize("recipe", ["arena_basic_easy_shaped", "navigation"])
def test_a_config_plays_the_same_game_whatever_its_key_order(recipe):
    config = build_config(recipe, [], default_device="cpu")
    reordered = RunConfig.model_validate(reversed_dicts(config.model_dump(mode="json")))
    from_file = RunConfig.from_json(config.to_json())  # sorted keys, as written to disk
    assert reordered == config == from_file  # equal as dicts: what `heartgrid diff` sees
    expected = capture(config)
    for other in (reordered, from_file):
        divergence = first_divergence(expected, capture(other))
        assert divergence is None, divergence.message()
