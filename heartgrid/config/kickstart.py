"""Kickstarting (trainer.kickstart): a teacher policy's action distribution and value become
extra losses of the PPO update, annealed to zero (heartgrid/trainer/kickstart.py)."""

from __future__ import annotations

from pydantic import Field

from heartgrid.config.base import Config


class KickstartConfig(Config):
    teacher_uri: str | None = None
    """Policy URI of the teacher (a checkpoint directory, `runs/x`, `runs/x?best=score`, ...);
    None = off (the default). Any architecture whose action names include the student's: its
    logits are taken by name, in the student's order."""
    action_loss_coef: float = Field(1.0, ge=0)
    """Weight of `losses/ks_action_loss` = KL(teacher || student) of the action distributions,
    averaged over the minibatch's steps."""
    value_loss_coef: float = Field(1.0, ge=0)
    """Weight of `losses/ks_value_loss` = mean (V_student - V_teacher)^2 / 2."""
    kickstart_steps: int = Field(1_000_000_000, ge=1)
    """Agent steps over which the teacher is used; both coefficients are 0 from here on."""
    anneal_ratio: float = Field(0.65, ge=0, le=1)
    """The last `anneal_ratio` of `kickstart_steps` lowers both coefficients linearly to 0
    (0: full weight until kickstart_steps, then off)."""
