"""Curriculum algorithms (SPEC §3): how likely each task of the active pool is to be sampled.

An algorithm keeps statistics per task id, learns from every finished episode
(`update(task_id, reward)` with the episode's mean reward per agent) and turns them into a
probability vector over the pool (`probabilities(task_ids)`). Everything it stores is plain
Python data, so `state_dict()` survives JSON and `torch.save`.

- `random`: uniform over the pool.
- `learning_progress`: favours tasks whose success rate is changing, up or down.
- `prioritize_regressed`: favours tasks whose reward fell below their best.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from heartgrid.config.curriculum import (
    CurriculumConfig,
    LearningProgressConfig,
    PrioritizeRegressedConfig,
)


class CurriculumAlgorithm(ABC):
    name: str

    def add_task(self, task_id: int) -> None:
        """A task joined the pool."""

    def remove_task(self, task_id: int) -> None:
        """A task left the pool; forget its statistics."""

    def update(self, task_id: int, reward: float) -> None:
        """An episode of a pool task finished with this mean reward per agent."""

    @abstractmethod
    def probabilities(self, task_ids: list[int]) -> np.ndarray:
        """Sampling probability of each task, in the order given; sums to 1."""

    def stats(self, task_ids: list[int]) -> dict[str, float]:
        """Algorithm statistics, named relative to `curriculum/`."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore for an algorithm without state (the default)."""


class RandomAlgorithm(CurriculumAlgorithm):
    name = "random"

    def probabilities(self, task_ids: list[int]) -> np.ndarray:
        return np.full(len(task_ids), 1.0 / len(task_ids))


# --------------------------------------------------------------------------------------------
# Learning progress (bidirectional)

BASELINE_CAP = 0.75
"""A task's baseline is its first success rate, capped so a task that starts out solved can still
show progress (the normaliser 1 - baseline stays >= 0.25)."""
SLOW_TIMESCALE_FACTOR = 0.2
"""The slow EMA's timescale is the fast one's times this (SPEC §3)."""


def success_score(reward: float) -> float:
    """An episode's score for learning progress: its mean reward per agent clipped to [0, 1].

    SPEC §3 scores tasks by success rates clipped to [0, 1]; a HeartGrid episode has no binary
    success, so its reward stands in for it: 0 is "nothing achieved" and 1 is "at least one
    reward unit per agent" (one heart, or a full set of capped shaped rewards, in the arena).
    Rewards beyond 1 all score 1, so progress is measured on the way to the first unit.
    """
    return min(max(reward, 0.0), 1.0)


def reweight(p: np.ndarray, smoothing: float) -> np.ndarray:
    """reweight(p) = p(1 - s) / (p + s(1 - 2p)), s = progress_smoothing.

    Maps [0, 1] onto itself (0 -> 0, 1 -> 1) and stretches small p, so progress on a task that
    is just starting to succeed counts more than the same change near full success.
    """
    numerator = p * (1.0 - smoothing)
    denominator = p + smoothing * (1.0 - 2.0 * p)
    # The denominator is 0 only for p = 0 with s = 0, where the limit is 0.
    return np.divide(numerator, denominator, out=np.zeros_like(p), where=denominator != 0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class TaskProgress:
    scores: deque[float]
    """The last `memory` scores; their mean is the task's success rate."""
    baseline: float | None = None
    """min(first success rate, BASELINE_CAP); None until the task's first refresh."""
    fast: float = 0.0
    slow: float = 0.0

    @property
    def success(self) -> float:
        return math.fsum(self.scores) / len(self.scores) if self.scores else 0.0


class LearningProgress(CurriculumAlgorithm):
    """Bidirectional learning progress (SPEC §3).

    Every `sample_threshold` finished episodes (a clock shared by the whole pool, so every
    task's EMAs advance at the same rate and their gaps are comparable) each task with at least
    min(sample_threshold, memory) scores (so its baseline is not one lucky episode) refreshes:

        success    = mean of its last `memory` scores
        baseline   = min(success at its first refresh, 0.75)
        normalized = max(success - baseline, 0) / (1 - baseline)
        fast      += a * (normalized - fast)              a = ema_timescale
        slow      += 0.2 a * (normalized - slow)
        progress   = |reweight(fast) - reweight(slow)|

    Sampling: over the tasks with progress > 0 or success > 0, weights = sigmoid of the z-scored
    progress, normalised (uniform when no task qualifies); then mixed with a uniform share:
    p = (1 - rand_task_rate) * weights + rand_task_rate / num_tasks.
    """

    name = "learning_progress"

    def __init__(self, config: LearningProgressConfig):
        self.config = config
        self.tasks: dict[int, TaskProgress] = {}
        self.episodes_since_refresh = 0

    def add_task(self, task_id: int) -> None:
        self.tasks[task_id] = TaskProgress(scores=deque(maxlen=self.config.memory))

    def remove_task(self, task_id: int) -> None:
        del self.tasks[task_id]

    def update(self, task_id: int, reward: float) -> None:
        self.tasks[task_id].scores.append(success_score(reward))
        self.episodes_since_refresh += 1
        if self.episodes_since_refresh >= self.config.sample_threshold:
            self.refresh()
            self.episodes_since_refresh = 0

    def refresh(self) -> None:
        fast_rate = self.config.ema_timescale
        slow_rate = fast_rate * SLOW_TIMESCALE_FACTOR
        # A baseline from fewer episodes would be mostly noise (capped by what memory can hold).
        scores_needed = min(self.config.sample_threshold, self.config.memory)
        for task in self.tasks.values():
            if len(task.scores) < scores_needed:
                continue
            success = task.success
            first = task.baseline is None
            if first:
                task.baseline = min(success, BASELINE_CAP)
            normalized = max(success - task.baseline, 0.0) / (1.0 - task.baseline)
            if first:
                task.fast = task.slow = normalized  # both start at the current value: no progress
            else:
                task.fast += fast_rate * (normalized - task.fast)
                task.slow += slow_rate * (normalized - task.slow)

    def progress(self, task_ids: list[int]) -> np.ndarray:
        fast = np.array([self.tasks[t].fast for t in task_ids])
        slow = np.array([self.tasks[t].slow for t in task_ids])
        smoothing = self.config.progress_smoothing
        return np.abs(reweight(fast, smoothing) - reweight(slow, smoothing))

    def success(self, task_ids: list[int]) -> np.ndarray:
        return np.array([self.tasks[t].success for t in task_ids])

    def probabilities(self, task_ids: list[int]) -> np.ndarray:
        num_tasks = len(task_ids)
        progress = self.progress(task_ids)
        candidates = (progress > 0) | (self.success(task_ids) > 0)
        if candidates.any():
            z = progress[candidates]
            std = z.std()
            z = (z - z.mean()) / (std if std > 0 else 1.0)
            weights = np.zeros(num_tasks)
            weights[candidates] = sigmoid(z)
            weights /= weights.sum()
        else:
            weights = np.full(num_tasks, 1.0 / num_tasks)
        rand = self.config.rand_task_rate
        return (1.0 - rand) * weights + rand / num_tasks

    def stats(self, task_ids: list[int]) -> dict[str, float]:
        progress = self.progress(task_ids)
        return {
            "lp/progress_mean": float(progress.mean()),
            "lp/progress_max": float(progress.max()),
            "lp/success_mean": float(self.success(task_ids).mean()),
            "lp/fast_mean": float(np.mean([self.tasks[t].fast for t in task_ids])),
            "lp/slow_mean": float(np.mean([self.tasks[t].slow for t in task_ids])),
            "lp/scored_tasks": float(sum(self.tasks[t].baseline is not None for t in task_ids)),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "episodes_since_refresh": self.episodes_since_refresh,
            "tasks": [
                {"id": t, "scores": list(task.scores), "baseline": task.baseline,
                 "fast": task.fast, "slow": task.slow}
                for t, task in self.tasks.items()
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episodes_since_refresh = int(state["episodes_since_refresh"])
        self.tasks = {
            int(t["id"]): TaskProgress(
                scores=deque((float(s) for s in t["scores"]), maxlen=self.config.memory),
                baseline=None if t["baseline"] is None else float(t["baseline"]),
                fast=float(t["fast"]),
                slow=float(t["slow"]),
            )
            for t in state["tasks"]
        }


# --------------------------------------------------------------------------------------------
# Prioritise regressed


@dataclass
class TaskRewards:
    ema: float | None = None
    """EMA of the episode reward; starts at the first reward (no bias towards 0)."""
    best: float = 0.0


class PrioritizeRegressed(CurriculumAlgorithm):
    """weight = 1e-6 + best / (ema + 1e-6), per task; probabilities = weights / sum(weights).

    `ema` is the reward's EMA (decay = `ema_decay`), `best` the highest reward seen: a task whose
    reward fell below its best weighs more than 1, one at its best about 1, one never rewarded
    1e-6. A task not played yet weighs 1, like a task at its best. The formula is a ratio of
    rewards, so rewards are clipped at 0 (a penalty cannot make a weight negative).
    """

    name = "prioritize_regressed"
    EPSILON = 1e-6

    def __init__(self, config: PrioritizeRegressedConfig):
        self.config = config
        self.tasks: dict[int, TaskRewards] = {}

    def add_task(self, task_id: int) -> None:
        self.tasks[task_id] = TaskRewards()

    def remove_task(self, task_id: int) -> None:
        del self.tasks[task_id]

    def update(self, task_id: int, reward: float) -> None:
        task = self.tasks[task_id]
        reward = max(reward, 0.0)
        decay = self.config.ema_decay
        task.ema = reward if task.ema is None else (1.0 - decay) * task.ema + decay * reward
        task.best = max(task.best, reward)

    def weights(self, task_ids: list[int]) -> np.ndarray:
        eps = self.EPSILON
        return np.array([
            1.0 if (r := self.tasks[t]).ema is None else eps + r.best / (r.ema + eps)
            for t in task_ids
        ])

    def probabilities(self, task_ids: list[int]) -> np.ndarray:
        weights = self.weights(task_ids)
        return weights / weights.sum()

    def stats(self, task_ids: list[int]) -> dict[str, float]:
        weights = self.weights(task_ids)
        seen = [self.tasks[t] for t in task_ids if self.tasks[t].ema is not None]
        return {
            "pr/weight_max": float(weights.max()),
            "pr/weight_mean": float(weights.mean()),
            "pr/ema_reward_mean": float(np.mean([r.ema for r in seen])) if seen else 0.0,
            "pr/best_reward_mean": float(np.mean([r.best for r in seen])) if seen else 0.0,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"tasks": [{"id": t, "ema": r.ema, "best": r.best} for t, r in self.tasks.items()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tasks = {
            int(t["id"]): TaskRewards(
                ema=None if t["ema"] is None else float(t["ema"]), best=float(t["best"])
            )
            for t in state["tasks"]
        }


def make_algorithm(config: CurriculumConfig) -> CurriculumAlgorithm:
    if config.algorithm == "random":
        return RandomAlgorithm()
    if config.algorithm == "learning_progress":
        return LearningProgress(config.learning_progress)
    if config.algorithm == "prioritize_regressed":
        return PrioritizeRegressed(config.prioritize_regressed)
    raise ValueError(
        f"unknown curriculum.algorithm {config.algorithm!r}; "
        "use random, learning_progress or prioritize_regressed"
    )
