"""Evaluating the policy on a suite while training (`evaluation.suite`, every
`evaluation.interval` epochs and at the end).

The numbers join the epoch's metrics record, against its `metric/agent_step`:

    evaluator/<suite>/<simulation>/reward   reward per agent per episode, the mean
    evaluator/<suite>/<simulation>/score    the simulation's normalised score (its metric / reference)
    overview/<category>_score               the mean score of a category's simulations
    overview/<suite>_score                  the suite's overall score

(`<simulation>` is the simulation's key, `category/name`.) The run directory's writer appends
the whole scorecard to `runs/<run>/stats.duckdb` and keeps the overview scores in the next
checkpoint's manifest, so a policy URI can pick the best checkpoint by a score.

Evaluating draws nothing from the trainer's random generators (its own are seeded by each
simulation, and `torch.random.fork_rng` fences off the rest), so a run trains the same with
evaluation as without, and resumes exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from heartgrid.config.run import RunConfig
from heartgrid.errors import UsageError
from heartgrid.evaluation.policy_sources import policy_from_module
from heartgrid.evaluation.resolve import SuiteError
from heartgrid.evaluation.scorecard import Scorecard
from heartgrid.evaluation.suite_eval import check_playable, evaluate_suite
from heartgrid.evaluation.suites import LoadedSuite, load_suite


class SuiteEvaluator:
    def __init__(self, config: RunConfig, device: torch.device):
        evaluation = config.evaluation
        self.interval, self.episodes, self.device = evaluation.interval, evaluation.suite_episodes, device
        self.run = config.run
        try:  # found now, so that a misspelled suite stops the run before it trains
            self.suite: LoadedSuite = load_suite(evaluation.suite)
            self.suite.resolve()
        except SuiteError as e:
            raise UsageError(f"evaluation.suite: {e}") from None

    def check(self, policy: nn.Module) -> None:
        """UsageError, before training, when the policy cannot play a game of the suite (it
        would stop the run at its first evaluation, and evaluation.* cannot change on resume)."""
        try:
            check_playable(policy, self.suite.resolve(), str(self.device))
        except ValueError as e:
            raise UsageError(f"evaluation.suite {self.suite.name}: {e}") from None

    def due(self, epoch: int, last: bool) -> bool:
        return epoch % self.interval == 0 or last

    def evaluate(self, policy: nn.Module, epoch: int, agent_step: int) -> tuple[Scorecard, dict[str, float]]:
        """The scorecard of the current policy and the metrics it adds to the record."""
        player = policy_from_module(policy, f"{self.run}@{epoch}", run=self.run, epoch=epoch, agent_step=agent_step)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            card = evaluate_suite([player], self.suite, episodes=self.episodes, device=str(self.device))
        return card, scorecard_metrics(card, player.info.policy_id)


def scorecard_metrics(card: Scorecard, policy_id: str) -> dict[str, float]:
    metrics: dict[str, Any] = {}
    for simulation in card.simulations:
        result = card.result(policy_id, simulation.key)
        if result is None:
            continue
        episodes = result.episodes
        prefix = f"evaluator/{card.suite}/{simulation.key}"
        metrics[f"{prefix}/reward"] = sum(e.reward for e in episodes) / len(episodes)
        metrics[f"{prefix}/score"] = sum(e.score for e in episodes) / len(episodes)
    for category in card.categories:
        summary = card.category_summary(policy_id, category)
        if summary is not None:
            metrics[f"overview/{category}_score"] = summary.mean
    overall = card.overall(policy_id)
    if overall is not None:
        # A suite with several categories, one named like the suite, keeps both numbers.
        clash = card.suite in card.categories and len(card.categories) > 1
        metrics[f"overview/{card.suite}_overall_score" if clash else f"overview/{card.suite}_score"] = overall.mean
    return metrics
