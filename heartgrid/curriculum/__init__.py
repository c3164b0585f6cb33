"""Curriculum (SPEC §3): task generators, the active task pool and its sampling algorithms, and
the driver that feeds tasks to the batched engine and episode rewards back."""

from heartgrid.curriculum.curriculum import Curriculum
from heartgrid.curriculum.driver import CurriculumDriver
from heartgrid.curriculum.metrics import REQUIRED_CURRICULUM_METRICS, required_curriculum_metrics
from heartgrid.curriculum.tasks import Task, TaskGenerator, make_task_generator

__all__ = [
    "Curriculum",
    "CurriculumDriver",
    "REQUIRED_CURRICULUM_METRICS",
    "Task",
    "TaskGenerator",
    "make_task_generator",
    "required_curriculum_metrics",
]
