"""Evaluation: play a saved policy for whole episodes and report hearts, reward and lengths."""

from heartgrid.evaluation.evaluate import EvalResult, evaluate, evaluation_game
from heartgrid.evaluation.run import (
    NoGameError,
    PolicySource,
    eval_config,
    evaluate_on_game,
    load_evaluated_policy,
)

__all__ = [
    "EvalResult",
    "NoGameError",
    "PolicySource",
    "eval_config",
    "evaluate",
    "evaluate_on_game",
    "evaluation_game",
    "load_evaluated_policy",
]
