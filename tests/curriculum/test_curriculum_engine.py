"""CurriculumDriver with the real batched engine on `small_easy_shaped` plus a small bucket."""

from __future__ import annotations

import io

import torch

from heartgrid.config.curriculum import BucketedTaskConfig, CurriculumConfig, SingleTaskConfig
from heartgrid.curriculum import CurriculumDriver, required_curriculum_metrics
from heartgrid.curriculum.metrics import parse_task_reward_key
from heartgrid.engine.batched import BatchedEngine
from heartgrid.recipes import get_recipe

NUM_ENVS = 8
STEPS_PER_ROLLOUT = 16


def curriculum_config() -> CurriculumConfig:
    # max_steps varies per task, so each episode's length shows which game the env really played.
    buckets = {"max_steps": [20, 30, 40], "agent.rewards.ore_red": [0.0, 1.0]}
    return CurriculumConfig(
        algorithm="learning_progress",
        tasks=BucketedTaskConfig(child=SingleTaskConfig(name="small"), buckets=buckets),
        num_active_tasks=4,
        new_task_rate=0.2,
        min_presentations=1,
    )


def make(seed: int = 0) -> tuple[BatchedEngine, CurriculumDriver]:
    game = get_recipe("small_easy_shaped").fn("cpu").game
    engine = BatchedEngine(game, num_envs=NUM_ENVS, seed=seed)
    driver = CurriculumDriver(curriculum_config(), game, engine, seed=seed)
    engine.reset()
    return engine, driver


def rollout(engine: BatchedEngine, generator: torch.Generator):
    for _ in range(STEPS_PER_ROLLOUT):
        actions = torch.randint(len(engine.action_names), (engine.num_slots,), generator=generator)
        engine.step(actions)
    return engine.drain_episodes()


def test_envs_play_the_tasks_the_driver_assigns():
    engine, driver = make()
    generator = torch.Generator().manual_seed(0)
    reported_before: set[int] = set()
    episodes = 0
    for _ in range(12):
        batch = rollout(engine, generator)
        tasks = {t.id: t for t in driver.env_tasks + driver.previous_tasks}
        for env, task_id, length in zip(
            batch.env_ids.tolist(), batch.task_ids.tolist(), batch.lengths.tolist()
        ):
            max_steps = tasks[task_id].game.max_steps
            # An env's first episode ends early (desync_episodes); every later one runs in full.
            assert length == max_steps if env in reported_before else length <= max_steps
            reported_before.add(env)
        episodes += len(batch)
        driver.on_episodes(batch)
    metrics = driver.metrics()
    task_rewards = {parse_task_reward_key(k): v for k, v in metrics.items() if parse_task_reward_key(k)}
    assert len(task_rewards) >= 2
    assert metrics["curriculum/episodes"] == episodes == metrics["curriculum/completed"]
    assert metrics["curriculum/created"] > 4  # new tasks entered the pool
    assert set(required_curriculum_metrics(curriculum_config())) <= set(metrics)


def test_resume_with_the_engine_continues_exactly():
    engine, driver = make()
    generator = torch.Generator().manual_seed(1)
    for _ in range(4):
        driver.on_episodes(rollout(engine, generator))
    buffer = io.BytesIO()
    torch.save(
        {"engine": engine.state_dict(), "curriculum": driver.state_dict(),
         "actions": generator.get_state()},
        buffer,
    )

    def play(engine, driver, generator):
        batches = []
        for _ in range(6):
            batch = rollout(engine, generator)
            driver.on_episodes(batch)
            batches.append((batch.env_ids.tolist(), batch.task_ids.tolist(), batch.rewards.tolist()))
        return batches, driver.metrics()

    expected = play(engine, driver, generator)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    resumed_engine, resumed_driver = make(seed=0)
    resumed_engine.load_state_dict(state["engine"])
    resumed_driver.load_state_dict(state["curriculum"])
    generator.set_state(state["actions"])
    assert play(resumed_engine, resumed_driver, generator) == expected


def test_arena_recipe_curriculum_runs_in_the_engine():
    config = get_recipe("arena_basic_easy_shaped").fn("cpu")
    assert config.curriculum.algorithm == "learning_progress"
    assert isinstance(config.curriculum.tasks, BucketedTaskConfig)
    game = config.game.model_copy(update={"max_steps": 30})  # short episodes for the test
    engine = BatchedEngine(game, num_envs=4, seed=0)
    driver = CurriculumDriver(config.curriculum, game, engine, seed=0)
    engine.reset()
    generator = torch.Generator().manual_seed(0)
    for _ in range(4):
        driver.on_episodes(rollout(engine, generator))
    metrics = driver.metrics()
    task_rewards = [k for k in metrics if parse_task_reward_key(k)]
    assert len(task_rewards) >= 2
    assert all(parse_task_reward_key(k).startswith("arena") for k in task_rewards)
