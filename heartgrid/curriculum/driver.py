"""Connects a curriculum to the batched engine: tasks out to the envs, episode rewards back.

The trainer calls, once per rollout, `driver.on_episodes(engine.drain_episodes())` and, at each
log, `driver.metrics()`. The engine plays an env's assigned task from the env's next episode on
and tags every finished episode with the id of the task it played, so no env ever waits for the
curriculum.

An env reports an episode only at the next drain, when it has already started its next episode
with the task assigned earlier; the new assignment therefore takes effect one episode later.
So the driver remembers two tasks per env: the one assigned last (`env_tasks`) and the one
before it (`previous_tasks`), and every reported episode played one of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import torch

from heartgrid.config.curriculum import CurriculumConfig
from heartgrid.config.game import GameConfig
from heartgrid.curriculum.curriculum import Curriculum
from heartgrid.curriculum.metrics import MAX_TASK_REWARD_METRICS, task_reward_key
from heartgrid.curriculum.tasks import Task


class EpisodeBatchLike(Protocol):
    env_ids: torch.Tensor
    task_ids: torch.Tensor
    rewards: torch.Tensor
    """Episode reward, mean per agent."""


class TaskEngine(Protocol):
    num_envs: int

    def set_next_task(
        self, env_ids: list[int], games: list[GameConfig], task_ids: list[int]
    ) -> None: ...


class EnvShare:
    """The TaskEngine of a batch of `num_envs` envs split across processes, of which `engine`
    holds [first_env, first_env + engine.num_envs) (torch.distributed ranks,
    docs/distributed.md). A driver over it runs the whole batch's curriculum, every process
    alike when each sees every finished episode (env ids in the batch's numbering), and
    hands this process's envs their tasks."""

    def __init__(self, engine: TaskEngine, first_env: int, num_envs: int):
        self.engine, self.first_env, self.num_envs = engine, first_env, num_envs

    def set_next_task(self, env_ids: list[int], games: list[GameConfig], task_ids: list[int]) -> None:
        end = self.first_env + self.engine.num_envs
        mine = [i for i, env in enumerate(env_ids) if self.first_env <= env < end]
        if mine:
            self.engine.set_next_task([env_ids[i] - self.first_env for i in mine], [games[i] for i in mine],
                                      [task_ids[i] for i in mine])


class CurriculumDriver:
    def __init__(
        self, config: CurriculumConfig, base_game: GameConfig, engine: TaskEngine, seed: int
    ):
        self.curriculum = Curriculum.from_config(config, base_game, seed)
        self.engine = engine
        tasks = [self.curriculum.sample() for _ in range(engine.num_envs)]
        self.env_tasks: list[Task] = tasks
        """The task each env plays from its next episode on."""
        self.previous_tasks: list[Task] = list(tasks)
        """The task assigned before it, which the env may still be playing."""
        self.episode_rewards: dict[str, list[float]] = {}
        """Episode rewards per task name since the last `metrics()`."""
        self._assign(list(range(engine.num_envs)), tasks)

    def on_episodes(self, batch: EpisodeBatchLike) -> None:
        """Report each finished episode to the curriculum; give its env the next task."""
        env_ids = batch.env_ids.tolist()
        task_ids = batch.task_ids.tolist()
        rewards = batch.rewards.tolist()
        for env, task_id, reward in zip(env_ids, task_ids, rewards):
            task = self._task_played(env, task_id)
            self.curriculum.complete(task_id, reward)
            self.episode_rewards.setdefault(task.name, []).append(reward)
        finished = sorted(set(env_ids))
        next_tasks = [self.curriculum.sample() for _ in finished]
        for env, task in zip(finished, next_tasks):
            self.previous_tasks[env] = self.env_tasks[env]
            self.env_tasks[env] = task
        if finished:
            self._assign(finished, next_tasks)

    def metrics(self) -> dict[str, float]:
        """`curriculum/*` now, and `task_reward/<task>/rewards.mean` over the episodes since the
        last call (the `MAX_TASK_REWARD_METRICS` most played tasks)."""
        metrics = self.curriculum.stats()
        metrics["curriculum/episodes"] = float(sum(len(r) for r in self.episode_rewards.values()))
        metrics["curriculum/tasks_played"] = float(len(self.episode_rewards))
        most_played = sorted(
            self.episode_rewards.items(), key=lambda item: (-len(item[1]), item[0])
        )
        for name, rewards in most_played[:MAX_TASK_REWARD_METRICS]:
            metrics[task_reward_key(name)] = math.fsum(rewards) / len(rewards)
        self.episode_rewards = {}
        return metrics

    def _task_played(self, env: int, task_id: int) -> Task:
        for task in (self.previous_tasks[env], self.env_tasks[env]):
            if task.id == task_id:
                return task
        raise ValueError(
            f"env {env} finished an episode of task {task_id}, but this driver gave it tasks "
            f"{self.previous_tasks[env].id} and {self.env_tasks[env].id}; the engine's tasks must "
            "come from this driver (after a resume, load the driver's state_dict too)"
        )

    def _assign(self, env_ids: list[int], tasks: Sequence[Task]) -> None:
        try:
            self.engine.set_next_task(env_ids, [t.game for t in tasks], [t.id for t in tasks])
        except ValueError as err:
            raise ValueError(
                f"curriculum task(s) {sorted({t.name for t in tasks})[:3]} cannot run in this "
                f"engine: {err}. Curriculum buckets may change what varies per episode (rewards, "
                "recipes, object counts), not what the engine fixes (number of agents, map size, "
                "observation size, enabled actions)"
            ) from err

    # ----------------------------------------------------------------------------------------
    # Checkpoints

    def state_dict(self) -> dict[str, Any]:
        assigned = {t.id: t for t in self.env_tasks + self.previous_tasks}
        return {
            "curriculum": self.curriculum.state_dict(),
            "tasks": [{"id": t.id, "seed": t.seed, "name": t.name} for t in assigned.values()],
            "env_tasks": [t.id for t in self.env_tasks],
            "previous_tasks": [t.id for t in self.previous_tasks],
            "episode_rewards": {name: list(r) for name, r in self.episode_rewards.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the curriculum and the envs' tasks, and hand those tasks to the engine again
        (so it does not matter whether the engine's own state is loaded before or after)."""
        if len(state["env_tasks"]) != self.engine.num_envs:
            raise ValueError(
                f"the checkpoint's curriculum drove {len(state['env_tasks'])} envs but the engine "
                f"has {self.engine.num_envs}; resume with the same trainer.num_envs"
            )
        self.curriculum.load_state_dict(state["curriculum"])
        tasks = {t.id: t for t in self.curriculum.pool}
        for saved in state["tasks"]:
            task_id = int(saved["id"])
            if task_id not in tasks:  # evicted, but an env still plays it
                seed, name = int(saved["seed"]), saved["name"]
                tasks[task_id] = self.curriculum.rebuild_task(task_id, seed, name)
        self.env_tasks = [tasks[int(i)] for i in state["env_tasks"]]
        self.previous_tasks = [tasks[int(i)] for i in state["previous_tasks"]]
        self.episode_rewards = {
            name: [float(r) for r in rewards] for name, rewards in state["episode_rewards"].items()
        }
        self._assign(list(range(self.engine.num_envs)), self.env_tasks)
