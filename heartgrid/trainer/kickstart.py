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

from heartgrid.checkpoint.errors import CheckpointError
from heartgrid.config.kickstart import KickstartConfig
from heartgrid.errors import UsageError
from heartgrid.evaluation.run import load_evaluated_policy
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
        self.slots, self.device = slots, device
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

    def reset(self) -> None:
        """Zero memory for every slot (trainer.recurrent_state=reset, at each rollout)."""
        self.state = self.module.initial_state(self.slots, self.device)

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.state = tuple(s.to(self.device) for s in saved["state"])


class Kickstarter:
    """trainer.kickstart as the trainer uses it: the teacher, and when it is needed.

    The scale of an update is that of the agent step it happens at (the end of its rollout),
    so the teacher acts in a rollout only if that update still uses it: once the coefficients
    reach 0 the teacher stops running and the losses are no longer computed or logged.
    """

    def __init__(self, config: KickstartConfig, engine: Any, slots: int, device: torch.device):
        self.config = config
        uri = str(config.teacher_uri)
        try:
            module, _ = load_evaluated_policy(uri)
        except CheckpointError as e:
            raise UsageError(f"trainer.kickstart.teacher_uri={uri}: {e}") from e
        self.teacher = Teacher(module, engine.features, list(engine.action_space.names), slots, device, uri)

    def scale(self, agent_step: int) -> float:
        return coefficient_scale(agent_step, self.config)

    def coefficients(self, agent_step: int) -> tuple[float, float]:
        """(action, value) loss coefficients in force at `agent_step`."""
        scale = self.scale(agent_step)
        return scale * self.config.action_loss_coef, scale * self.config.value_loss_coef

    def parameters(self, agent_step: int) -> dict[str, float]:
        """Logged with the record: the coefficients in force (`parameters/ks_*_coef`)."""
        action, value = self.coefficients(agent_step)
        return {"parameters/ks_action_coef": action, "parameters/ks_value_coef": value}

    def reset_memory(self) -> None:
        """trainer.recurrent_state=reset: the teacher starts each rollout afresh, as the student."""
        self.teacher.reset()
