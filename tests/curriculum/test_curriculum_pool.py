"""The active pool: new tasks, eviction, statistics and checkpoint round trips."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from heartgrid.config.curriculum import BucketedTaskConfig, CurriculumConfig, SingleTaskConfig
from heartgrid.curriculum import Curriculum
from heartgrid.curriculum.metrics import ALGORITHM_METRICS, REQUIRED_CURRICULUM_METRICS
from heartgrid.recipes.arena import arena_curriculum, arena_game
from heartgrid.recipes.small import small_game

BUCKETS = {"agent.rewards.ore_red": [0.0, 0.2, 0.4, 0.6], "objects.altar.cooldown": [1, 2, 3, 4, 5]}


def bucketed_config(**fields) -> CurriculumConfig:
    tasks = BucketedTaskConfig(child=SingleTaskConfig(name="small"), buckets=BUCKETS)
    return CurriculumConfig(tasks=tasks, **fields)


def test_pool_is_filled_with_distinct_tasks():
    curriculum = Curriculum.from_config(bucketed_config(num_active_tasks=6), small_game(), seed=0)
    assert len(curriculum.pool) == 6
    assert len({t.name for t in curriculum.pool}) == 6
    assert curriculum.task_ids == [0, 1, 2, 3, 4, 5]
    assert curriculum.created == 6


def test_pool_of_a_single_task():
    config = CurriculumConfig(tasks=SingleTaskConfig(), num_active_tasks=16, new_task_rate=1.0)
    curriculum = Curriculum.from_config(config, small_game(), seed=0)
    assert [t.name for t in curriculum.pool] == ["default"]
    for _ in range(20):
        task = curriculum.sample()
        curriculum.complete(task.id, 1.0)
    assert (curriculum.created, curriculum.evicted, curriculum.completed) == (1, 0, 20)


def test_eviction_waits_for_min_presentations():
    config = bucketed_config(num_active_tasks=4, new_task_rate=1.0, min_presentations=2)
    curriculum = Curriculum.from_config(config, small_game(), seed=0)
    for _ in range(10):
        curriculum.sample()
    assert (curriculum.created, curriculum.evicted) == (4, 0)
    for task in list(curriculum.pool):
        curriculum.complete(task.id, 0.5)
        curriculum.complete(task.id, 0.5)
    curriculum.sample()
    assert (curriculum.created, curriculum.evicted) == (5, 1)
    # The newcomer has no presentations, so the pool now has 3 eligible tasks.
    assert sorted(curriculum.completions.values()) == [0, 2, 2, 2]
    assert len({t.name for t in curriculum.pool}) == 4


def test_eviction_removes_the_least_likely_task():
    config = bucketed_config(
        algorithm="prioritize_regressed", num_active_tasks=4, new_task_rate=1.0, min_presentations=1
    )
    curriculum = Curriculum.from_config(config, small_game(), seed=0)
    pool_before = list(curriculum.pool)
    # Tasks 0, 1, 3 regress (weight > 1); task 2 is never rewarded (weight 1e-6).
    for task, rewards in zip(pool_before, ([1.0, 0.1], [1.0, 0.5], [0.0, 0.0], [1.0, 0.2])):
        for reward in rewards:
            curriculum.complete(task.id, reward)
    curriculum.sample()
    assert curriculum.evicted == 1
    assert pool_before[2] not in curriculum.pool
    assert curriculum.pool[2].id == 4  # the newcomer takes the evicted task's place
    # An evicted task's late episodes count as completed but no longer reach the algorithm.
    completed = curriculum.completed
    curriculum.complete(pool_before[2].id, 1.0)
    assert curriculum.completed == completed + 1
    assert pool_before[2].id not in curriculum.algorithm.tasks


@pytest.mark.parametrize("algorithm", ["random", "learning_progress", "prioritize_regressed"])
def test_stats_names_and_values(algorithm):
    config = bucketed_config(algorithm=algorithm, num_active_tasks=5)
    curriculum = Curriculum.from_config(config, small_game(), seed=0)
    stats = curriculum.stats()
    expected = set(REQUIRED_CURRICULUM_METRICS) - {"curriculum/episodes", "curriculum/tasks_played"}
    assert set(stats) == expected | set(ALGORITHM_METRICS[algorithm])
    assert stats["curriculum/pool_size"] == 5
    assert stats["curriculum/sample_prob_min"] == stats["curriculum/sample_prob_max"] == 0.2
    assert stats["curriculum/sample_prob_entropy"] == pytest.approx(1.0)


def play(curriculum: Curriculum, episodes: int, seed: int) -> list[tuple[int, str]]:
    rng = np.random.default_rng(seed)
    sampled = []
    for _ in range(episodes):
        task = curriculum.sample()
        sampled.append((task.id, task.name))
        curriculum.complete(task.id, float(rng.random()))
    return sampled


@pytest.mark.parametrize("algorithm", ["random", "learning_progress", "prioritize_regressed"])
@pytest.mark.parametrize("via", ["json", "torch"])
def test_state_dict_round_trip_gives_identical_future_samples(algorithm, via):
    config = bucketed_config(
        algorithm=algorithm, num_active_tasks=5, new_task_rate=0.1, min_presentations=3
    )
    config.learning_progress.sample_threshold = 3
    original = Curriculum.from_config(config, small_game(), seed=7)
    play(original, 300, seed=1)
    assert original.evicted > 0
    state = original.state_dict()
    if via == "json":
        state = json.loads(json.dumps(state))
    else:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        state = torch.load(buffer, weights_only=True)
    resumed = Curriculum.from_config(config, small_game(), seed=123)
    resumed.load_state_dict(state)
    assert [t.name for t in resumed.pool] == [t.name for t in original.pool]
    assert [t.game for t in resumed.pool] == [t.game for t in original.pool]
    np.testing.assert_array_equal(resumed.probabilities(), original.probabilities())
    assert play(resumed, 300, seed=2) == play(original, 300, seed=2)
    assert resumed.stats() == original.stats()


def test_loading_a_checkpoint_from_a_different_config_fails():
    config = bucketed_config(num_active_tasks=3)
    state = Curriculum.from_config(config, small_game(), seed=0).state_dict()
    changed = CurriculumConfig(
        tasks=BucketedTaskConfig(
            child=SingleTaskConfig(name="small"), buckets={"agent.rewards.ore_red": [0.7, 0.8]}
        ),
        num_active_tasks=3,
    )
    with pytest.raises(ValueError, match=r"task 0 was 'small/.*' .* config changed"):
        Curriculum.from_config(changed, small_game(), seed=0).load_state_dict(state)
    other = bucketed_config(num_active_tasks=3, algorithm="learning_progress")
    with pytest.raises(ValueError, match=r"algorithm 'random' but curriculum.algorithm is 'learning_progress'"):
        Curriculum.from_config(other, small_game(), seed=0).load_state_dict(state)


def test_arena_curriculum_pool():
    config = arena_curriculum()
    curriculum = Curriculum.from_config(config, arena_game(easy=True, shaped=True), seed=0)
    assert len(curriculum.pool) == config.num_active_tasks == 16
    assert len({t.name for t in curriculum.pool}) == 16
    again = Curriculum.from_config(config, arena_game(easy=True, shaped=True), seed=0)
    assert [t.name for t in again.pool] == [t.name for t in curriculum.pool]
