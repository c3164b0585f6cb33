"""Names of the curriculum metrics (SPEC §4), for the metric contract.

Every training run logs, through `CurriculumDriver.metrics()`:
- `curriculum/*`: `REQUIRED_CURRICULUM_METRICS`, plus the statistics of the configured algorithm
  (`ALGORITHM_METRICS`);
- `task_reward/<task>/rewards.mean`: the mean episode reward (per agent) of each task that
  finished episodes since the previous log, at most `MAX_TASK_REWARD_METRICS` tasks per log (the
  most played). Task names may contain `/`, so parse a key with `parse_task_reward_key`.
"""

from __future__ import annotations

from heartgrid.config.curriculum import CurriculumConfig, SingleTaskConfig

REQUIRED_CURRICULUM_METRICS: tuple[str, ...] = (
    "curriculum/pool_size",
    "curriculum/created",
    "curriculum/evicted",
    "curriculum/completed",
    "curriculum/sample_prob_min",
    "curriculum/sample_prob_max",
    "curriculum/sample_prob_entropy",
    "curriculum/episodes",
    "curriculum/tasks_played",
)

ALGORITHM_METRICS: dict[str, tuple[str, ...]] = {
    "random": (),
    "learning_progress": tuple(
        f"curriculum/lp/{name}"
        for name in (
            "progress_mean", "progress_max", "success_mean", "fast_mean", "slow_mean",
            "scored_tasks",
        )
    ),
    "prioritize_regressed": tuple(
        f"curriculum/pr/{name}"
        for name in ("weight_max", "weight_mean", "ema_reward_mean", "best_reward_mean")
    ),
}

TASK_REWARD_PREFIX = "task_reward/"
TASK_REWARD_SUFFIX = "/rewards.mean"
MAX_TASK_REWARD_METRICS = 32
"""Task reward names logged per log call: a bucketed curriculum makes thousands of tasks over a
run, so only the most played since the last log are written."""


def task_reward_key(task_name: str) -> str:
    return f"{TASK_REWARD_PREFIX}{task_name}{TASK_REWARD_SUFFIX}"


def parse_task_reward_key(key: str) -> str | None:
    """The task name of a `task_reward/<task>/rewards.mean` key, else None."""
    if key.startswith(TASK_REWARD_PREFIX) and key.endswith(TASK_REWARD_SUFFIX):
        name = key[len(TASK_REWARD_PREFIX) : -len(TASK_REWARD_SUFFIX)]
        return name or None
    return None


def required_curriculum_metrics(config: CurriculumConfig) -> list[str]:
    """Every curriculum metric name a run with this curriculum must log.

    Task names of generated tasks depend on the draw, so only a `single` task's reward name is
    listed; for other generators check that some key parses with `parse_task_reward_key`.
    """
    names = [*REQUIRED_CURRICULUM_METRICS, *ALGORITHM_METRICS[config.algorithm]]
    if isinstance(config.tasks, SingleTaskConfig):
        names.append(task_reward_key(config.tasks.name))
    return names
