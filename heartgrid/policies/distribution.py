"""The categorical action distribution over the flat action space, from logits.

Written out rather than through `torch.distributions.Categorical` because the rollout and
evaluation sample from a dedicated generator (so a seed fixes the actions and a checkpoint can
restore them) and the update only needs log-probabilities and entropies.
"""

from __future__ import annotations

import torch
from torch import Tensor

_TINY = torch.finfo(torch.float32).tiny  # Exp(1) draws of exactly 0 would pick their action surely


def sample_actions(logits: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(actions [B], their log-probabilities [B]) for logits [B, A].

    Gumbel-max: argmax_a(log π(a) − log E_a) with E_a ~ Exp(1) independent is a sample of π
    (−log E is Gumbel-distributed). `torch.multinomial` does the same, but several torch
    versions first check its input with two host reads, a wait for the GPU at every rollout step.
    """
    logprobs = torch.log_softmax(logits.float(), dim=-1)  # float32 noise even for half logits
    noise = torch.empty_like(logprobs).exponential_(generator=generator).clamp_(min=_TINY)
    actions = (logprobs - noise.log()).argmax(dim=-1)
    return actions, logprobs.gather(-1, actions[:, None]).squeeze(-1)


def logprobs_and_entropy(logits: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
    """log π(action) and the entropy of π, for logits [..., A] and actions [...]."""
    logprobs = torch.log_softmax(logits, dim=-1)
    entropy = -(logprobs.exp() * logprobs).sum(dim=-1)
    return logprobs.gather(-1, actions[..., None]).squeeze(-1), entropy
