"""NPCs in evaluation: a share of each env's agents played by another policy, reported apart."""

from __future__ import annotations

import pytest

from heartgrid.engine.features import FeatureRegistry
from heartgrid.errors import UsageError
from heartgrid.evaluation.run import evaluate_on_game
from heartgrid.policies.scripted import make_scripted_policy
from heartgrid.recipes import build_config


def game(npc: str, pct: float = 0.5):
    return build_config("small_cardinal", ["game.max_steps=200", f"game.policy_agents_pct={pct}",
                                           f"game.npc_policy_uri={npc}"]).game


def learner(name: str):
    g = build_config("small_cardinal", []).game
    from heartgrid.engine.action_space import ActionSpace
    return make_scripted_policy(name, FeatureRegistry.default(), ActionSpace.from_game(g).names)


@pytest.mark.parametrize("mine,theirs", [("random", "greedy"), ("greedy", "random")])
def test_each_side_is_played_and_reported_by_its_own_policy(mine, theirs):
    result = evaluate_on_game(learner(mine), game(f"scripted:{theirs}"), episodes=4, num_envs=4, device="cpu")
    assert result.npc_rewards is not None and result.npc_agent_stats is not None
    hearts, npc_hearts = result.agent_stats["heart.gained"].mean(), result.npc_agent_stats["heart.gained"].mean()
    greedy, random = (hearts, npc_hearts) if mine == "greedy" else (npc_hearts, hearts)
    assert greedy > 1.0 and greedy > 3 * random
    summary = result.summary()
    assert summary["npc"]["reward"]["mean"] == pytest.approx(float(result.npc_rewards.double().mean()))


def test_without_npcs_nothing_is_reported_for_them():
    plain = build_config("small_cardinal", ["game.max_steps=50"]).game
    result = evaluate_on_game(learner("random"), plain, episodes=2, num_envs=2, device="cpu")
    assert result.npc_rewards is None and "npc" not in result.summary()


def test_bad_npc_settings_are_refused_clearly():
    with pytest.raises(UsageError, match="unknown scripted policy 'sleepy'"):
        evaluate_on_game(learner("random"), game("scripted:sleepy"), episodes=1, num_envs=1, device="cpu")
    with pytest.raises(UsageError, match="self plays this training run"):
        evaluate_on_game(learner("random"), game("self"), episodes=1, num_envs=1, device="cpu")
    with pytest.raises(UsageError, match="npc_policy_uri=runs/none"):
        evaluate_on_game(learner("random"), game("runs/none"), episodes=1, num_envs=1, device="cpu")
