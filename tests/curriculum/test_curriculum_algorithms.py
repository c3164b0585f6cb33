"""Curriculum algorithms: exact formulas (SPEC §3) and the behaviour they are for."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from heartgrid.config.curriculum import (
    CurriculumConfig,
    LearningProgressConfig,
    PrioritizeRegressedConfig,
    SingleTaskConfig,
    TaskSetConfig,
    WeightedTaskConfig,
)
from heartgrid.curriculum import Curriculum
from heartgrid.curriculum.algorithms import (
    LearningProgress,
    PrioritizeRegressed,
    reweight,
    success_score,
)
from heartgrid.recipes.small import small_game


def task_set_config(num_tasks: int, algorithm: str, **fields) -> CurriculumConfig:
    children = [WeightedTaskConfig(generator=SingleTaskConfig(name=f"t{i}")) for i in range(num_tasks)]
    return CurriculumConfig(algorithm=algorithm, tasks=TaskSetConfig(children=children), **fields)


def run_synthetic(curriculum: Curriculum, reward_of, episodes: int) -> Counter:
    """Play `episodes` episodes; an episode of task `name` played at progress x = i / episodes
    gets reward_of(name, x). Returns how often each task was sampled over the last quarter."""
    late = Counter()
    for i in range(episodes):
        task = curriculum.sample()
        if i >= episodes * 3 // 4:
            late[task.name] += 1
        curriculum.complete(task.id, reward_of(task.name, i / episodes))
    return late


def pool_probabilities(curriculum: Curriculum) -> dict[str, float]:
    return dict(zip([t.name for t in curriculum.pool], curriculum.probabilities()))


def test_success_score_clips_the_reward():
    assert [success_score(r) for r in (-2.0, 0.0, 0.25, 1.0, 7.5)] == [0.0, 0.0, 0.25, 1.0, 1.0]


def test_reweight_formula():
    p = np.array([0.0, 0.1, 0.5, 1.0])
    # p(1 - s) / (p + s(1 - 2p)) with s = 0.05
    expected = [0.0, 0.095 / 0.14, 0.475 / 0.5, 1.0]
    np.testing.assert_allclose(reweight(p, 0.05), expected, rtol=1e-12)
    # s = 0: any progress away from 0 counts fully; p = 0 stays 0 (no division by zero).
    np.testing.assert_array_equal(reweight(np.array([0.0, 0.3]), 0.0), [0.0, 1.0])


def test_learning_progress_refresh_formulas():
    lp = LearningProgress(LearningProgressConfig(ema_timescale=0.5, sample_threshold=2, memory=3))
    lp.add_task(0)
    lp.update(0, 0.2)
    assert lp.tasks[0].baseline is None  # the shared clock has not ticked yet
    lp.update(0, 0.4)
    # First refresh: success 0.3 -> baseline 0.3, both EMAs start at normalized = 0.
    task = lp.tasks[0]
    assert (task.baseline, task.fast, task.slow) == (pytest.approx(0.3), 0.0, 0.0)
    lp.update(0, 1.0)
    lp.update(0, 1.0)
    # Memory keeps the last 3 scores: 0.4, 1, 1 -> success 0.8; normalized (0.8 - 0.3) / 0.7.
    normalized = 0.5 / 0.7
    assert task.fast == pytest.approx(0.5 * normalized)
    assert task.slow == pytest.approx(0.1 * normalized)  # slow timescale = 0.2 x fast
    s = 0.05
    rw = lambda p: p * (1 - s) / (p + s * (1 - 2 * p))  # noqa: E731
    assert lp.progress([0])[0] == pytest.approx(abs(rw(0.5 * normalized) - rw(0.1 * normalized)))


def test_learning_progress_baseline_is_capped():
    lp = LearningProgress(LearningProgressConfig(ema_timescale=1.0, sample_threshold=1))
    lp.add_task(0)
    lp.update(0, 1.0)
    assert lp.tasks[0].baseline == 0.75
    assert lp.tasks[0].fast == 1.0  # (1 - 0.75) / (1 - 0.75)


def test_learning_progress_with_a_memory_shorter_than_the_threshold():
    lp = LearningProgress(LearningProgressConfig(sample_threshold=10, memory=3))
    lp.add_task(0)
    for reward in [0.0] * 7 + [0.2, 0.4, 0.6]:
        lp.update(0, reward)
    assert lp.tasks[0].baseline == pytest.approx(0.4)  # the mean of the 3 remembered scores


def test_learning_progress_sampling_weights():
    lp = LearningProgress(LearningProgressConfig(rand_task_rate=0.25))
    for t in range(3):
        lp.add_task(t)
    # No progress and no success anywhere: uniform.
    np.testing.assert_allclose(lp.probabilities([0, 1, 2]), [1 / 3] * 3)
    # Task 0 progresses, task 1 has success but no progress, task 2 has neither (excluded).
    lp.tasks[0].fast, lp.tasks[0].slow = 0.2, 0.1
    lp.tasks[1].scores.append(0.5)
    z = np.array([1.0, -1.0])  # z-scores of two distinct values
    sig = 1 / (1 + np.exp(-z))
    expected = np.array([*(0.75 * sig / sig.sum() + 0.25 / 3), 0.25 / 3])
    np.testing.assert_allclose(lp.probabilities([0, 1, 2]), expected, rtol=1e-12)
    assert math.isclose(lp.probabilities([0, 1, 2]).sum(), 1.0)


def test_learning_progress_shifts_sampling_to_the_improving_task():
    # Reference parameters. Only t0's success rate improves (0 -> 1); the others stay at 0.3.
    curriculum = Curriculum.from_config(task_set_config(4, "learning_progress"), small_game(), seed=0)
    late = run_synthetic(curriculum, lambda name, x: x if name == "t0" else 0.3, episodes=3000)
    probabilities = pool_probabilities(curriculum)
    others = [p for name, p in probabilities.items() if name != "t0"]
    # Progress [x, 0, 0, 0] z-scores to [sqrt(3), -1/sqrt(3) x 3]; sigmoid, normalise, mix.
    sig = 1 / (1 + np.exp(-np.array([math.sqrt(3), -1 / math.sqrt(3)])))
    top = 0.75 * sig[0] / (sig[0] + 3 * sig[1]) + 0.25 / 4
    assert probabilities["t0"] == pytest.approx(top)
    assert others == pytest.approx([(1 - top) / 3] * 3)
    assert late["t0"] > 1.5 * max(late[n] for n in ("t1", "t2", "t3"))


def test_learning_progress_is_bidirectional():
    # t2's success rate falls (0.9 -> 0.1); the others stay at 0.5.
    curriculum = Curriculum.from_config(task_set_config(4, "learning_progress"), small_game(), seed=1)
    late = run_synthetic(curriculum, lambda name, x: 0.9 - 0.8 * x if name == "t2" else 0.5, 3000)
    probabilities = pool_probabilities(curriculum)
    assert probabilities["t2"] > 1.5 * max(p for n, p in probabilities.items() if n != "t2")
    assert late["t2"] > 1.5 * max(late[n] for n in ("t0", "t1", "t3"))


def test_learning_progress_with_noisy_successes():
    # Same as above with Bernoulli successes: t0 improves, the others are noisy at 0.3.
    curriculum = Curriculum.from_config(task_set_config(4, "learning_progress"), small_game(), seed=0)
    rng = np.random.default_rng(0)
    late = run_synthetic(
        curriculum, lambda name, x: float(rng.random() < (x if name == "t0" else 0.3)), 3000
    )
    probabilities = pool_probabilities(curriculum)
    assert probabilities["t0"] == max(probabilities.values())
    assert late["t0"] == max(late.values())


def test_prioritize_regressed_weight_formula():
    pr = PrioritizeRegressed(PrioritizeRegressedConfig(ema_decay=0.01))
    for t in range(3):
        pr.add_task(t)
    pr.update(0, 1.0)
    pr.update(0, 0.5)
    pr.update(1, 2.0)
    ema = 0.99 * 1.0 + 0.01 * 0.5
    np.testing.assert_allclose(
        pr.weights([0, 1, 2]), [1e-6 + 1.0 / (ema + 1e-6), 1e-6 + 2.0 / (2.0 + 1e-6), 1.0], rtol=1e-12
    )
    pr.update(2, -3.0)  # a penalty is clipped at 0: never rewarded -> weight 1e-6
    assert pr.weights([2])[0] == pytest.approx(1e-6)


def test_prioritize_regressed_favours_the_task_whose_reward_dropped():
    config = task_set_config(4, "prioritize_regressed")
    curriculum = Curriculum.from_config(config, small_game(), seed=2)
    # Every task gets reward 0.8; in the second half t3 drops to 0.2.
    late = run_synthetic(curriculum, lambda n, x: 0.2 if n == "t3" and x > 0.5 else 0.8, 2000)
    probabilities = pool_probabilities(curriculum)
    assert probabilities["t3"] == max(probabilities.values())
    assert late["t3"] > max(late[n] for n in ("t0", "t1", "t2"))


def test_random_samples_uniformly():
    config = task_set_config(8, "random", new_task_rate=0.0)
    curriculum = Curriculum.from_config(config, small_game(), seed=3)
    counts = Counter(curriculum.sample().name for _ in range(8000))
    observed = [counts[f"t{i}"] for i in range(8)]
    assert chisquare(observed).pvalue > 0.01
    # Reporting rewards does not change random sampling.
    for task in curriculum.pool:
        curriculum.complete(task.id, float(task.id))
    np.testing.assert_array_equal(curriculum.probabilities(), np.full(8, 1 / 8))
