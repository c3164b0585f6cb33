"""The curriculum (SPEC §3): an active pool of tasks, sampled by an algorithm, renewed over time.

- The pool holds `num_active_tasks` distinct tasks (fewer when the generator cannot make that
  many: a `single` generator gives a pool of one).
- `sample()` picks a pool task with the algorithm's probabilities. Before that, with probability
  `new_task_rate`, a new task replaces one from the pool (eviction).
- Eviction rule: only tasks with at least `min_presentations` finished episodes may leave; of
  those, the one the algorithm would sample least leaves (ties: the most played, then the
  oldest). When none is eligible the pool stays as it is.
- `complete(task_id, reward)` reports a finished episode. A task evicted while envs were still
  playing it may report later: it counts as completed, but no longer teaches the algorithm.

All randomness comes from one seeded `numpy.random.Generator`; `state_dict()` holds it, the
pool as `(id, seed, name)` (tasks are rebuilt from their seeds) and the algorithm's statistics,
all plain Python data (JSON and `torch.save` friendly).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from heartgrid.config.curriculum import CurriculumConfig
from heartgrid.config.game import GameConfig
from heartgrid.curriculum.algorithms import make_algorithm
from heartgrid.curriculum.tasks import Task, TaskGenerator, make_task_generator

MAX_DRAWS = 1000
"""Draws tried to find a task whose name is not in the pool yet (drawing a name is cheap)."""


class Curriculum:
    def __init__(self, config: CurriculumConfig, generator: TaskGenerator, seed: int):
        self.config = config
        self.generator = generator
        self.algorithm = make_algorithm(config)
        self.rng = np.random.default_rng(seed)
        distinct = generator.num_distinct()  # None: unbounded
        # When the pool can hold every task the generator makes, new tasks cannot add anything.
        self.exhaustive = distinct is not None and distinct <= config.num_active_tasks
        self.capacity = distinct if self.exhaustive else config.num_active_tasks
        self.pool: list[Task] = []
        self.completions: dict[int, int] = {}
        """Finished episodes per pool task (eviction needs `min_presentations` of them)."""
        self.next_id = 0
        self.created = 0
        self.evicted = 0
        self.completed = 0
        self._probabilities: np.ndarray | None = None
        while len(self.pool) < self.capacity and (task := self._draw_new_task()) is not None:
            self._add(task)

    @classmethod
    def from_config(cls, config: CurriculumConfig, base_game: GameConfig, seed: int) -> Curriculum:
        return cls(config, make_task_generator(config.tasks, base_game), seed)

    @property
    def task_ids(self) -> list[int]:
        return [task.id for task in self.pool]

    def probabilities(self) -> np.ndarray:
        """Sampling probability of each pool task, in pool order (cached until the next change)."""
        if self._probabilities is None:
            self._probabilities = self.algorithm.probabilities(self.task_ids)
        return self._probabilities

    def sample(self) -> Task:
        if self.rng.random() < self.config.new_task_rate:
            self._renew_pool()
        index = self.rng.choice(len(self.pool), p=self.probabilities())
        return self.pool[index]

    def complete(self, task_id: int, reward: float) -> None:
        """An episode of `task_id` finished with this mean reward per agent."""
        self.completed += 1
        if task_id in self.completions:
            self.completions[task_id] += 1
            self.algorithm.update(task_id, reward)
            self._probabilities = None

    # ----------------------------------------------------------------------------------------
    # Pool

    def _draw_new_task(self) -> Task | None:
        names = {task.name for task in self.pool}
        for _ in range(MAX_DRAWS):
            seed = int(self.rng.integers(2**32))
            draft = self.generator.draft(np.random.default_rng(seed))
            if draft.name not in names:
                task = Task(id=self.next_id, seed=seed, name=draft.name, game=draft.build())
                self.next_id += 1
                return task
        return None

    def _add(self, task: Task, index: int | None = None) -> None:
        if index is None:
            self.pool.append(task)
        else:
            self.pool[index] = task
        self.completions[task.id] = 0
        self.algorithm.add_task(task.id)
        self.created += 1
        self._probabilities = None

    def _renew_pool(self) -> None:
        if len(self.pool) < self.capacity:
            if (task := self._draw_new_task()) is not None:
                self._add(task)
            return
        if self.exhaustive:
            return
        eligible = [
            i for i, task in enumerate(self.pool)
            if self.completions[task.id] >= self.config.min_presentations
        ]
        if not eligible:
            return
        new_task = self._draw_new_task()
        if new_task is None:
            return
        probabilities = self.probabilities()
        victim = min(
            eligible,
            key=lambda i: (probabilities[i], -self.completions[self.pool[i].id], self.pool[i].id),
        )
        old = self.pool[victim]
        self.algorithm.remove_task(old.id)
        del self.completions[old.id]
        self.evicted += 1
        self._add(new_task, index=victim)

    # ----------------------------------------------------------------------------------------
    # Statistics and checkpoints

    def stats(self) -> dict[str, float]:
        """`curriculum/*`: pool counters, a summary of the sampling probabilities and the
        algorithm's statistics."""
        probabilities = self.probabilities()
        nonzero = probabilities[probabilities > 0]
        entropy = float(-(nonzero * np.log(nonzero)).sum())
        num_tasks = len(probabilities)
        stats = {
            "curriculum/pool_size": float(num_tasks),
            "curriculum/created": float(self.created),
            "curriculum/evicted": float(self.evicted),
            "curriculum/completed": float(self.completed),
            "curriculum/sample_prob_min": float(probabilities.min()),
            "curriculum/sample_prob_max": float(probabilities.max()),
            # Entropy / log(pool size): 1 is uniform sampling, towards 0 one task dominates.
            "curriculum/sample_prob_entropy": (
                entropy / math.log(num_tasks) if num_tasks > 1 else 1.0
            ),
        }
        for name, value in self.algorithm.stats(self.task_ids).items():
            stats[f"curriculum/{name}"] = value
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm.name,
            "rng": self.rng.bit_generator.state,
            "next_id": self.next_id,
            "created": self.created,
            "evicted": self.evicted,
            "completed": self.completed,
            "pool": [
                {"id": t.id, "seed": t.seed, "name": t.name, "completions": self.completions[t.id]}
                for t in self.pool
            ],
            "algorithm_state": self.algorithm.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["algorithm"] != self.algorithm.name:
            raise ValueError(
                f"the checkpoint's curriculum used algorithm {state['algorithm']!r} but "
                f"curriculum.algorithm is {self.algorithm.name!r}; resume with the same algorithm"
            )
        self.pool = [
            self.rebuild_task(int(t["id"]), int(t["seed"]), t["name"]) for t in state["pool"]
        ]
        self.completions = {int(t["id"]): int(t["completions"]) for t in state["pool"]}
        self.rng.bit_generator.state = state["rng"]
        self.next_id = int(state["next_id"])
        self.created = int(state["created"])
        self.evicted = int(state["evicted"])
        self.completed = int(state["completed"])
        self.algorithm.load_state_dict(state["algorithm_state"])
        self._probabilities = None

    def rebuild_task(self, task_id: int, seed: int, name: str) -> Task:
        """The task a checkpoint names, rebuilt from its seed; refuses a changed task config."""
        task = self.generator.make_task(task_id, seed)
        if task.name != name:
            raise ValueError(
                f"curriculum task {task_id} was {name!r} when the checkpoint was written but the "
                f"current curriculum.tasks config makes {task.name!r} from the same seed; the "
                "task generator config changed since the checkpoint: resume with the same config"
            )
        return task
