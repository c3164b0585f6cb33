"""Hyperparameter schedules (SPEC §2): off unless the config names one.

The dehydration investigation (§10) found a learning-rate schedule that had been *added*
silently. Here the schedulable values are exactly `ScheduledName`; with `trainer.schedules`
empty every one of them is the constant TrainerConfig value, and a schedule changes only the
value it names. Values are a pure function of training progress p = agent_step /
total_timesteps (clamped to [0, 1]), so they need no state of their own to resume.
"""

from __future__ import annotations

import math
from typing import get_args

from heartgrid.config.trainer import ScheduleConfig, ScheduledName, TrainerConfig

SCHEDULED_NAMES: tuple[str, ...] = get_args(ScheduledName)

# Shape of the `logarithmic` schedule: fraction of the way done = log(1 + K p) / log(1 + K),
# which covers most of the change early in training (half of it by p ~ 0.23).
_LOG_SHARPNESS = 9.0


def schedule_value(schedule: ScheduleConfig, progress: float) -> float:
    p = min(max(progress, 0.0), 1.0)
    start, end = schedule.initial, schedule.final
    if schedule.type == "constant":
        return start
    if schedule.type == "linear":
        return start + (end - start) * p
    if schedule.type == "cosine":
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule.type == "exponential":
        if start <= 0 or end <= 0:
            raise ValueError(
                f"an exponential schedule needs initial and final > 0, got {start} and {end}; "
                "use a linear or cosine schedule to reach 0"
            )
        return start * (end / start) ** p
    if schedule.type == "logarithmic":
        return start + (end - start) * math.log1p(_LOG_SHARPNESS * p) / math.log1p(_LOG_SHARPNESS)
    raise ValueError(f"unknown schedule type {schedule.type!r}")


class Schedules:
    """The current value of every schedulable hyperparameter."""

    def __init__(self, trainer: TrainerConfig):
        self.trainer = trainer
        # Refuse bad schedules at construction, not in the middle of a run.
        for name, schedule in trainer.schedules.items():
            schedule_value(schedule, 0.0)

    def values(self, agent_step: int) -> dict[str, float]:
        progress = agent_step / self.trainer.total_timesteps
        current = {
            "learning_rate": self.trainer.optimizer.learning_rate,
            "clip_coef": self.trainer.clip_coef,
            "ent_coef": self.trainer.ent_coef,
            "vf_clip_coef": self.trainer.vf_clip_coef,
        }
        for name, schedule in self.trainer.schedules.items():
            current[name] = schedule_value(schedule, progress)
        return current
