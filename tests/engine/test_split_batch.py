"""An engine holding envs [k, k+n) of a batch (`first_env=k`, a torch.distributed rank's share)
plays exactly the games of those envs in one engine holding the whole batch."""

from __future__ import annotations

import pytest
import torch

from heartgrid.engine.batched import BatchedEngine
from heartgrid.recipes import build_config


@pytest.mark.parametrize("recipe", ["small_cardinal", "arena_basic_easy_shaped"])
def test_a_split_batch_plays_the_same_games(recipe):
    game = build_config(recipe, ["game.max_steps=40"]).game
    whole = BatchedEngine(game, 4, seed=3)
    halves = [BatchedEngine(game, 2, seed=3, first_env=k) for k in (0, 2)]
    for engine in [whole, *halves]:
        engine.reset()
    share = whole.num_slots // 2
    generator = torch.Generator().manual_seed(0)
    for _ in range(90):  # past two episode ends
        actions = torch.randint(0, len(whole.action_names), (whole.num_slots,), generator=generator)
        whole.step(actions)
        for k, half in enumerate(halves):
            half.step(actions[k * share:(k + 1) * share])
            mine = slice(k * share, (k + 1) * share)
            assert torch.equal(whole.obs[mine], half.obs)
            assert torch.equal(whole.rewards[mine], half.rewards)
            assert torch.equal(whole.terminals[mine] | whole.truncations[mine],
                               half.terminals | half.truncations)


def test_engine_state_of_another_share_is_refused():
    game = build_config("small_cardinal", []).game
    first, second = BatchedEngine(game, 2, seed=3), BatchedEngine(game, 2, seed=3, first_env=2)
    first.reset()
    with pytest.raises(ValueError, match="from env 0"):
        second.load_state_dict(first.state_dict())
