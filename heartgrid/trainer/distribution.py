"""The categorical action distribution over the flat action space, from logits.

Written out rather than through `torch.distributions.Categorical` because the rollout samples
from a dedicated generator (so a seed fixes the actions and a checkpoint can restore them) and
the update only needs log-probabilities and entropies.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sample_actions(logits: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(actions [B], their log-probabilities [B]) for logits [B, A]."""
    logprobs = torch.log_softmax(logits, dim=-1)
    actions = torch.multinomial(logprobs.exp(), 1, generator=generator).squeeze(-1)
    return actions, logprobs.gather(-1, actions[:, None]).squeeze(-1)


def logprobs_and_entropy(logits: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
    """log π(action) and the entropy of π, for logits [..., A] and actions [...]."""
    logprobs = torch.log_softmax(logits, dim=-1)
    entropy = -(logprobs.exp() * logprobs).sum(dim=-1)
    return logprobs.gather(-1, actions[..., None]).squeeze(-1), entropy
