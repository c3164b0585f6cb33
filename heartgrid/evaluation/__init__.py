"""Evaluation: play saved policies on a recipe's game, or score them on suites of simulations.

    from heartgrid.evaluation import evaluate_suite, policy_from_uri
    card = evaluate_suite([policy_from_uri("runs/x")], "navigation", device="cpu")
    card.overall(card.policies[0].policy_id)      # mean score with its 95% CI
    write_shard("evals.duckdb", card); merge_shards("evals.duckdb")   # the stats database

The names below are imported on first use rather than here: the stats database's modules
(DuckDB, no torch) serve `heartgrid stats` and concurrent shard writers without loading torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from heartgrid.evaluation.evaluate import EvalResult, evaluate, evaluation_game
    from heartgrid.evaluation.policy_sources import EvaluatedPolicy, policy_from_module, policy_from_uri
    from heartgrid.evaluation.resolve import SuiteError
    from heartgrid.evaluation.run import (
        NoGameError,
        PolicySource,
        eval_config,
        evaluate_on_game,
        load_evaluated_policy,
    )
    from heartgrid.evaluation.scorecard import Scorecard
    from heartgrid.evaluation.simulation import SimulationConfig, SuiteConfig
    from heartgrid.evaluation.stats_db import StatsDbError, merge_shards, write_shard
    from heartgrid.evaluation.suite_eval import evaluate_suite
    from heartgrid.evaluation.suites import load_suite

_MODULE_OF = {
    "EvalResult": "evaluate",
    "evaluate": "evaluate",
    "evaluation_game": "evaluate",
    "EvaluatedPolicy": "policy_sources",
    "policy_from_module": "policy_sources",
    "policy_from_uri": "policy_sources",
    "SuiteError": "resolve",
    "NoGameError": "run",
    "PolicySource": "run",
    "eval_config": "run",
    "evaluate_on_game": "run",
    "load_evaluated_policy": "run",
    "Scorecard": "scorecard",
    "SimulationConfig": "simulation",
    "SuiteConfig": "simulation",
    "StatsDbError": "stats_db",
    "merge_shards": "stats_db",
    "write_shard": "stats_db",
    "evaluate_suite": "suite_eval",
    "load_suite": "suites",
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
