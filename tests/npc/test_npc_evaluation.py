"""NPCs in evaluation: a share of each env's agents played by another policy, reported apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from heartgrid.checkpoint import save_policy
from heartgrid.config.run import PolicyConfig
from heartgrid.engine.action_space import ActionSpace
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.features import FeatureRegistry
from heartgrid.errors import UsageError
from heartgrid.evaluation import evaluate_suite, policy_from_module
from heartgrid.evaluation.resolve import SuiteError, resolve_simulation
from heartgrid.evaluation.run import PolicySource, evaluate_on_game
from heartgrid.evaluation.simulation import SimulationConfig, SuiteConfig
from heartgrid.evaluation.suites import load_suite
from heartgrid.policies import make_policy
from heartgrid.policies.scripted import make_scripted_policy
from heartgrid.recipes import build_config
from heartgrid.replay.format import find_replays, read_replay
from heartgrid.replay.requests import ReplayRequest
from heartgrid.tools.eval_cmd import format_report, report


def game(npc: str, pct: float = 0.5):
    return build_config("small_cardinal", ["game.max_steps=200", f"game.policy_agents_pct={pct}",
                                           f"game.npc_policy_uri={npc}"]).game


def learner(name: str):
    g = build_config("small_cardinal", []).game
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
    with pytest.raises(UsageError, match="self plays a training run"):
        evaluate_on_game(learner("random"), game("self"), episodes=1, num_envs=1, device="cpu")
    with pytest.raises(UsageError, match="npc_policy_uri=runs/none"):
        evaluate_on_game(learner("random"), game("runs/none"), episodes=1, num_envs=1, device="cpu")


def test_a_suite_simulation_with_npcs_plays_them(tmp_path):
    # The evaluated policy (random) plays agent 0 of small_easy_shaped, scripted:noop agent 1;
    # the episode scores, the per-agent rows and the replay are the policy's / name the NPCs.
    sim = SimulationConfig(category="duel", name="vs_noop", recipe="small_easy_shaped", episodes=2,
                           max_steps=30, reference=None,
                           overrides=["game.policy_agents_pct=0.5", "game.npc_policy_uri=scripted:noop"])
    names = ActionSpace.from_game(build_config("small_easy_shaped", []).game).names
    policy = make_scripted_policy("random", FeatureRegistry.default(), names)
    card = evaluate_suite([policy_from_module(policy, "random")], SuiteConfig(name="npcs", simulations=[sim]),
                          device="cpu", replays=ReplayRequest(tmp_path, episodes=2))
    (result,) = card.results
    assert all(len(e.agent_rewards) == 1 for e in result.episodes)
    for path in find_replays(tmp_path):
        document = read_replay(path)
        assert document["meta"]["npc_policy"] == "scripted:noop" and document["meta"]["npc_agents"] == [1]
        noop = names.index("noop_0")
        assert all(step["a"][1] == noop for step in document["steps"])
        assert {step["a"][0] for step in document["steps"]} != {noop}


def test_suite_npcs_are_checked_when_the_suite_loads_and_scores_are_the_policys_share():
    multi = next(s for s in load_suite("navigation").config.simulations if s.name == "multiagent_open")
    plain = resolve_simulation(multi, "navigation")
    with_npcs = multi.model_copy(update={"overrides": [*multi.overrides, "game.policy_agents_pct=0.25",
                                                       "game.npc_policy_uri=scripted:random"]})
    resolved = resolve_simulation(with_npcs, "navigation")
    # "auto": the most one of the policy's agents can average, its side taking every heart.
    assert resolved.game.num_agents == 4 and resolved.game.policy_agents == 1
    assert resolved.reference(resolved.game) == 4 * plain.reference(plain.game)
    # An NPC that cannot play is refused with the simulation's name before anything plays.
    for uri, message in (("self", "self plays a training run"),
                         ("scripted:sleepy", "unknown scripted policy 'sleepy'"),
                         ("runs/none", "no such file or directory")):
        bad = multi.model_copy(update={"overrides": ["game.policy_agents_pct=0.5", f"game.npc_policy_uri={uri}"]})
        with pytest.raises(SuiteError, match=f"simulation navigation/multiagent_open of suite navigation: .*{message}"):
            resolve_simulation(bad, "navigation")


def test_the_eval_report_shows_the_npcs_rows():
    result = evaluate_on_game(learner("greedy"), game("scripted:random"), episodes=2, num_envs=2, device="cpu")
    source = PolicySource(checkpoint=Path("p"), name="greedy", epoch=None, agent_step=None)
    text = format_report(report(result, source, "recipe small_cardinal", greedy=False, seed=0))
    labels = [line[:30].strip() for line in text.splitlines()[2:]]
    assert labels == ["hearts per agent (heart.get)", "reward per agent", "NPC hearts per agent",
                      "NPC reward per agent", "episode length"]


def test_an_npc_checkpoint_that_cannot_play_the_game_is_named(tmp_path):
    # A `fast` policy's conv stack is sized for its game's window (small_cardinal's); as the
    # NPC of a game with another window it fails at its first step, named as the NPC.
    small = build_config("small_cardinal", []).game
    engine = BatchedEngine(small, 1)
    policy = make_policy(PolicyConfig(name="fast", hidden_size=16), engine.features, engine.action_names,
                         engine.obs_shape)
    uri = save_policy(tmp_path / "npc", policy)
    other = build_config("arena_basic_easy_shaped", ["game.max_steps=20", "game.policy_agents_pct=0.5",
                                                     f"game.npc_policy_uri={uri}"]).game
    assert other.obs_width != small.obs_width
    with pytest.raises(UsageError, match=rf"game.npc_policy_uri={uri}: policy 'fast' was built for"):
        evaluate_on_game(learner("random"), other, episodes=1, num_envs=1, device="cpu")
