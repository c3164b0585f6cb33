"""Typed configuration of the curriculum (SPEC §3).

A task generator is composable: `single` (the run's game), `set` (weighted children) and
`bucketed` (a child plus dotted game paths, each with a list of values or a numeric range).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field

from heartgrid.config.base import Config
from heartgrid.config.game import GameConfig


class SingleTaskConfig(Config):
    kind: Literal["single"] = "single"
    name: str = "default"
    game: GameConfig | None = None
    """The task's game; None = the run's `game`."""


class RangeConfig(Config):
    """A numeric range sampled uniformly per task: integers when the game's value at the path is
    an integer, else floats rounded to 4 significant digits (so a task name shows the exact value)."""

    low: float
    high: float


class BucketedTaskConfig(Config):
    kind: Literal["bucketed"] = "bucketed"
    child: TaskGeneratorConfig = Field(default_factory=SingleTaskConfig)
    buckets: dict[str, list[Any] | RangeConfig] = Field(default_factory=dict)
    """Dotted game path (relative to the game, e.g. `agent.rewards.ore_red`) -> values."""


class WeightedTaskConfig(Config):
    generator: TaskGeneratorConfig
    weight: float = Field(1.0, gt=0)


class TaskSetConfig(Config):
    kind: Literal["set"] = "set"
    children: list[WeightedTaskConfig]


TaskGeneratorConfig = Annotated[
    Union[SingleTaskConfig, BucketedTaskConfig, TaskSetConfig], Field(discriminator="kind")
]


class LearningProgressConfig(Config):
    ema_timescale: float = Field(0.001, gt=0, le=1)
    progress_smoothing: float = Field(0.05, ge=0, lt=0.5)
    rand_task_rate: float = Field(0.25, ge=0, le=1)
    sample_threshold: int = Field(10, ge=1)
    memory: int = Field(25, ge=1)


class PrioritizeRegressedConfig(Config):
    ema_decay: float = Field(0.01, gt=0, le=1)


class CurriculumConfig(Config):
    algorithm: Literal["random", "learning_progress", "prioritize_regressed"] = "random"
    tasks: TaskGeneratorConfig = Field(default_factory=SingleTaskConfig)
    num_active_tasks: int = Field(16, ge=1)
    new_task_rate: float = Field(0.01, ge=0, le=1)
    """Probability, each time a task is sampled, that a fresh task replaces one from the pool."""
    min_presentations: int = Field(5, ge=0)
    """A task is eligible for eviction only after this many completed episodes."""
    learning_progress: LearningProgressConfig = Field(default_factory=LearningProgressConfig)
    prioritize_regressed: PrioritizeRegressedConfig = Field(
        default_factory=PrioritizeRegressedConfig
    )


def bucketed_paths(tasks: TaskGeneratorConfig) -> set[str]:
    """Every game path (relative to the game) that some generator sets per task."""
    if isinstance(tasks, BucketedTaskConfig):
        return set(tasks.buckets) | bucketed_paths(tasks.child)
    if isinstance(tasks, TaskSetConfig):
        return set().union(*(bucketed_paths(c.generator) for c in tasks.children))
    return set()


BucketedTaskConfig.model_rebuild()
WeightedTaskConfig.model_rebuild()
TaskSetConfig.model_rebuild()
CurriculumConfig.model_rebuild()
