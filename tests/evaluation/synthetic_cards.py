"""Scorecards made up without playing (for the stats database tests): `synthetic_card(seed)`
has 2 policies x 3 simulations x `episodes` episodes of 2 agents, with scores drawn from `seed`."""

from __future__ import annotations

import random
import uuid

from heartgrid.evaluation.scorecard import EpisodeScore, PolicyInfo, Result, Scorecard, SimulationInfo


def synthetic_card(seed: int, episodes: int = 5, suite: str = "synthetic") -> Scorecard:
    rng = random.Random(seed)
    policies = [PolicyInfo(label=f"p{i}", policy_id=f"{i:016x}", architecture="scripted") for i in range(2)]
    sims = [SimulationInfo(key=f"cat{i % 2}/sim{i}", suite=suite, category=f"cat{i % 2}", name=f"sim{i}",
                           description="made up", config_hash=f"{i:064x}", config={"i": i}, seed=0,
                           max_steps=10, metric="reward", normalisation="reward per agent / 2")
            for i in range(3)]
    results = []
    for p in policies:
        for s in sims:
            eps = []
            for k in range(episodes):
                rewards = [rng.random(), rng.random()]
                reward = sum(rewards) / 2
                eps.append(EpisodeScore(index=k, seed=1000 + k, length=10, reward=reward, metric=reward,
                                        reference=2.0, score=reward / 2, agent_rewards=rewards,
                                        agent_inventory={"heart": [1.0, 0.0]},
                                        stats={"env_agent/heart.get": 0.5}))
            results.append(Result(p.policy_id, s.key, eps, "2025-01-01T00:00:00+00:00",
                                  "2025-01-01T00:00:01+00:00", 1.0))
    return Scorecard(eval_id=uuid.uuid4().hex, suite=suite, created_at="2025-01-01T00:00:00+00:00",
                     device="cpu", actions="sampled", policies=policies, simulations=sims, results=results)
