"""Kickstarting: learn from a teacher policy while learning from the reward.

The teacher runs in inference on the rollout's own observations, next to the student, with its
own recurrent state; its logits and values are stored with the experience. In the update each
minibatch then adds

    ks_action_loss = mean over steps of KL(teacher || student)
                   = Σ_a π_T(a|s) (log π_T(a|s) − log π_S(a|s))
    ks_value_loss  = mean over steps of (V_S(s) − V_T(s))² / 2

to the PPO loss, weighted by `action_coef(step)` and `value_coef(step)`: full weight until
`kickstart_steps · (1 − anneal_ratio)` agent steps, then linearly down to 0 at
`kickstart_steps` (the reference system's kickstarter anneals the same way). KL rather than
cross-entropy: the same gradient, but a loss of 0 when the student matches the teacher, which
is what a user reading the curve expects.

The teacher may have another architecture. It is bound to the student's observation features
and action names by *name* (`Policy.adapt`), so its logits come in the student's action order;
a teacher that does not know one of the student's actions is refused (it would score that
action with an untrained row).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from heartgrid.config.kickstart import KickstartConfig
from heartgrid.errors import UsageError
from heartgrid.policies.base import reset_state


def coefficient_scale(agent_step: int, config: KickstartConfig) -> float:
    """The share (0..1) of the kickstart coefficients in force at `agent_step`."""
    end = config.kickstart_steps
    start = end * (1.0 - config.anneal_ratio)
    if agent_step >= end:
        return 0.0
    if agent_step <= start:
        return 1.0
    return (end - agent_step) / (end - start)


def kickstart_losses(student_logits: Tensor, student_values: Tensor, teacher_logits: Tensor,
                     teacher_values: Tensor) -> tuple[Tensor, Tensor]:
    """(ks_action_loss, ks_value_loss), each a mean over every step given ([..., A] / [...])."""
    teacher_log_probs = F.log_softmax(teacher_logits.float(), dim=-1)
    student_log_probs = F.log_softmax(student_logits, dim=-1)
    kl = (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(dim=-1)
    value = 0.5 * (student_values - teacher_values.float()).pow(2)
    return kl.mean(), value.mean()


class Teacher:
    """A frozen policy acting alongside the student on the same observations."""

    def __init__(self, module: nn.Module, features: Any, action_names: list[str], slots: int,
                 device: torch.device, uri: str):
        known = set(getattr(getattr(module, "action_head", None), "names", action_names))
        missing = [name for name in action_names if name not in known]
        if missing:
            raise UsageError(
                f"trainer.kickstart.teacher_uri={uri}: the teacher does not know the action(s) "
                f"{missing} of this game; a teacher must have every action name of the student")
        module.adapt(features, list(action_names))
        self.module = module.to(device).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
        self.state = self.module.initial_state(slots, device)
        self.uri = uri

    @torch.inference_mode()
    def act(self, obs: Tensor, episode_starts: Tensor) -> tuple[Tensor, Tensor]:
        """Logits [slots, A] and values [slots] for this rollout step; `episode_starts` (bool
        [slots]) zeroes the state of slots whose episode just began, as the student's."""
        self.state = reset_state(self.state, episode_starts)
        logits, values, self.state = self.module(obs, self.state)
        return logits.float(), values.float()

    def state_dict(self) -> dict[str, Any]:
        return {"state": [s.detach().cpu().clone() for s in self.state]}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        device = self.state[0].device
        self.state = tuple(s.to(device) for s in saved["state"])
