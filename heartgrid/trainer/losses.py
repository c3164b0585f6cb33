"""The PPO loss terms (SPEC §2), each a small function of plain tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def normalize(advantages: Tensor, mean: Tensor | float, std: Tensor | float) -> Tensor:
    return (advantages - mean) / (std + 1e-8)


def clipped_policy_loss(advantages: Tensor, ratio: Tensor, clip_coef: float) -> Tensor:
    """mean(max(−A·r, −A·clip(r, 1−ε, 1+ε))): the pessimistic bound of the PPO objective."""
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef)
    return torch.max(unclipped, clipped).mean()


def clipped_value_loss(
    new_values: Tensor, old_values: Tensor, returns: Tensor, vf_clip_coef: float
) -> Tensor:
    """0.5·mean(max((V − R)², (V_old + clip(V − V_old, ±ε_v) − R)²))."""
    unclipped = (new_values - returns) ** 2
    clipped_values = old_values + (new_values - old_values).clamp(-vf_clip_coef, vf_clip_coef)
    clipped = (clipped_values - returns) ** 2
    return 0.5 * torch.max(unclipped, clipped).mean()


@dataclass
class PPOLoss:
    """The total loss and the diagnostics logged as `losses/*`."""

    total: Tensor
    policy_loss: Tensor
    value_loss: Tensor
    entropy: Tensor
    approx_kl: Tensor
    old_approx_kl: Tensor
    clipfrac: Tensor
    importance: Tensor
    current_logprobs: Tensor
    ks_action_loss: Tensor | None = None
    """Kickstarting (trainer/kickstart.py): KL(teacher || student), when a teacher is in use."""
    ks_value_loss: Tensor | None = None

    def diagnostics(self) -> dict[str, Tensor]:
        """Detached scalars, named as in the metric contract (without the `losses/` prefix)."""
        names = ("policy_loss", "value_loss", "entropy", "approx_kl", "old_approx_kl",
                 "clipfrac", "importance", "current_logprobs")
        if self.ks_action_loss is not None:
            names += ("ks_action_loss", "ks_value_loss")
        return {name: getattr(self, name).detach() for name in names}


def ppo_loss(
    *,
    new_logprobs: Tensor,
    old_logprobs: Tensor,
    entropy: Tensor,
    new_values: Tensor,
    old_values: Tensor,
    advantages: Tensor,
    returns: Tensor,
    clip_coef: float,
    vf_clip_coef: float,
    vf_coef: float,
    ent_coef: float,
) -> PPOLoss:
    """Loss = policy loss + vf_coef·value loss − ent_coef·entropy, from already-normalised
    advantages. The ratio is recomputed here from the log-probabilities."""
    logratio = new_logprobs - old_logprobs
    ratio = logratio.exp()
    policy_loss = clipped_policy_loss(advantages, ratio, clip_coef)
    value_loss = clipped_value_loss(new_values, old_values, returns, vf_clip_coef)
    mean_entropy = entropy.mean()
    with torch.no_grad():
        # http://joschu.net/blog/kl-approx.html: (r − 1) − log r is unbiased and always >= 0.
        old_approx_kl = (-logratio).mean()
        approx_kl = ((ratio - 1.0) - logratio).mean()
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean()
    return PPOLoss(
        total=policy_loss + vf_coef * value_loss - ent_coef * mean_entropy,
        policy_loss=policy_loss,
        value_loss=value_loss,
        entropy=mean_entropy,
        approx_kl=approx_kl,
        old_approx_kl=old_approx_kl,
        clipfrac=clipfrac,
        importance=ratio.detach().mean(),
        current_logprobs=new_logprobs.detach().mean(),
    )
