"""Evaluation: play a saved policy for whole episodes and report hearts, reward and lengths."""

from heartgrid.evaluation.evaluate import EvalResult, evaluate, evaluation_game
from heartgrid.evaluation.run import NoGameError, PolicySource, eval_config, evaluate_checkpoint

__all__ = [
    "EvalResult",
    "NoGameError",
    "PolicySource",
    "eval_config",
    "evaluate",
    "evaluate_checkpoint",
    "evaluation_game",
]
