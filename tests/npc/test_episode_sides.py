"""With NPCs the engine reports the policy's agents and the NPCs apart (episodes.py)."""

from __future__ import annotations

import torch

from heartgrid.engine.batched import BatchedEngine
from heartgrid.recipes import build_config


def test_episode_stats_are_split_by_side_and_average_back_to_the_whole():
    overrides = ["game.max_steps=30", "game.policy_agents_pct=0.25", "game.npc_policy_uri=scripted:noop"]
    game = build_config("arena_basic_easy_shaped", overrides).game
    whole_game = build_config("arena_basic_easy_shaped", overrides[:1]).game
    split, whole = BatchedEngine(game, 3, seed=2), BatchedEngine(whole_game, 3, seed=2)
    for engine in (split, whole):
        engine.reset()
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        actions = torch.randint(0, len(split.action_names), (split.num_slots,), generator=generator)
        split.step(actions)
        whole.step(actions)
    mine, all_ = split.drain_episodes(), whole.drain_episodes()
    assert whole.log.policy_agents is None and all_.npc_rewards is None
    assert split.policy_agents == 6 and len(mine) == len(all_) > 0
    k, A = 6, 24
    for name in ("ore_red.gained", "action.move.success", "action.rotate.success"):
        blended = (k * mine.agent_stats[name] + (A - k) * mine.npc_agent_stats[name]) / A
        assert torch.allclose(blended, all_.agent_stats[name], atol=1e-4), name
    blended = (k * mine.rewards.double() + (A - k) * mine.npc_rewards.double()) / A
    assert torch.allclose(blended.float(), all_.rewards, atol=1e-5)
    # The state_dict round trip keeps the sides of undrained episodes.
    split.step(torch.zeros(split.num_slots, dtype=torch.long))
    for _ in range(40):
        split.step(torch.zeros(split.num_slots, dtype=torch.long))
    state = split.state_dict()
    other = BatchedEngine(game, 3, seed=2)
    other.load_state_dict(state)
    a, b = split.drain_episodes(), other.drain_episodes()
    assert len(a) > 0 and torch.equal(a.npc_rewards, b.npc_rewards)
