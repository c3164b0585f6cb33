"""CurriculumDriver against a fake engine that follows the engine's task contract:
`set_next_task` takes effect at an env's next episode, and every finished episode is reported
with the id of the task it played."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import torch

from heartgrid.config.curriculum import (
    BucketedTaskConfig,
    CurriculumConfig,
    RangeConfig,
    SingleTaskConfig,
)
from heartgrid.config.game import GameConfig
from heartgrid.config.overrides import apply_overrides
from heartgrid.curriculum import CurriculumDriver, required_curriculum_metrics
from heartgrid.curriculum.metrics import (
    MAX_TASK_REWARD_METRICS,
    parse_task_reward_key,
    task_reward_key,
)
from heartgrid.recipes.small import small_game


@dataclass
class FakeEpisodeBatch:
    env_ids: torch.Tensor
    task_ids: torch.Tensor
    rewards: torch.Tensor


@dataclass
class FakeEngine:
    num_envs: int
    playing: list[int | None] = field(default_factory=list)
    """Task id of each env's current episode."""
    next_task: dict[int, tuple[GameConfig, int]] = field(default_factory=dict)
    finished: list[tuple[int, int, float]] = field(default_factory=list)
    calls: list[list[int]] = field(default_factory=list)

    def __post_init__(self):
        self.playing = [None] * self.num_envs

    def set_next_task(self, env_ids: list[int], games: list[GameConfig], task_ids: list[int]) -> None:
        assert len(env_ids) == len(games) == len(task_ids)
        for env, game, task_id in zip(env_ids, games, task_ids):
            if game.num_agents != 2:
                raise ValueError(f"num_agents {game.num_agents} differs from the engine's 2")
            self.next_task[env] = (game, task_id)
        self.calls.append(list(env_ids))

    def reset(self) -> None:
        self.playing = [self.next_task[env][1] for env in range(self.num_envs)]

    def end_episode(self, env: int, reward: float) -> None:
        """The env's episode ends; it resets in place into its next task."""
        self.finished.append((env, self.playing[env], reward))
        self.playing[env] = self.next_task[env][1]

    def drain_episodes(self) -> FakeEpisodeBatch:
        env_ids, task_ids, rewards = zip(*self.finished) if self.finished else ((), (), ())
        self.finished = []
        return FakeEpisodeBatch(
            torch.tensor(env_ids, dtype=torch.long),
            torch.tensor(task_ids, dtype=torch.long),
            torch.tensor(rewards, dtype=torch.float32),
        )


def bucketed_config(**fields) -> CurriculumConfig:
    buckets = {"agent.rewards.ore_red": [0.0, 0.2, 0.4, 0.6], "objects.altar.cooldown": [1, 2, 3, 4]}
    tasks = BucketedTaskConfig(child=SingleTaskConfig(name="small"), buckets=buckets)
    return CurriculumConfig(tasks=tasks, **fields)


def make_driver(config: CurriculumConfig, num_envs: int = 4, seed: int = 0):
    engine = FakeEngine(num_envs)
    driver = CurriculumDriver(config, small_game(), engine, seed=seed)
    engine.reset()
    return driver, engine


def test_every_env_gets_a_task_at_start():
    driver, engine = make_driver(bucketed_config(num_active_tasks=3), num_envs=5)
    assert engine.calls == [[0, 1, 2, 3, 4]]
    pool = {t.id: t for t in driver.curriculum.pool}
    for env in range(5):
        game, task_id = engine.next_task[env]
        assert game == pool[task_id].game
        assert engine.playing[env] == task_id


def test_finished_envs_get_their_next_task_and_report_rewards():
    driver, engine = make_driver(bucketed_config(num_active_tasks=3), num_envs=4)
    started = list(engine.playing)
    engine.end_episode(1, 0.5)
    engine.end_episode(3, 0.25)
    engine.end_episode(1, 1.0)  # a second, short episode of env 1
    driver.on_episodes(engine.drain_episodes())
    assert engine.calls[1:] == [[1, 3]]
    assert driver.curriculum.completed == 3
    names = {t.id: t.name for t in driver.curriculum.pool}
    expected: dict[str, list[float]] = {}
    for env, reward in ((1, 0.5), (3, 0.25), (1, 1.0)):
        expected.setdefault(names[started[env]], []).append(reward)
    metrics = driver.metrics()
    rewards = {parse_task_reward_key(k): v for k, v in metrics.items() if parse_task_reward_key(k)}
    assert rewards == {name: pytest.approx(sum(r) / len(r)) for name, r in expected.items()}
    assert metrics["curriculum/episodes"] == 3
    assert metrics["curriculum/completed"] == 3
    # The window restarts after each call.
    again = driver.metrics()
    assert not any(parse_task_reward_key(k) for k in again)
    assert again["curriculum/episodes"] == 0


def test_episodes_are_credited_to_the_task_they_played():
    # Envs switch tasks one episode after the driver assigns them; prioritize_regressed keeps
    # each task's best reward, which must be the best of the episodes that task really played.
    config = bucketed_config(num_active_tasks=4, algorithm="prioritize_regressed")
    driver, engine = make_driver(config, num_envs=3)
    played: list[tuple[int, float]] = []
    for step in range(40):
        env = step % 3
        reward = 0.1 * (step % 7)
        played.append((engine.playing[env], reward))
        engine.end_episode(env, reward)
        if step % 4 == 3:  # the trainer drains once per rollout, after several episodes
            driver.on_episodes(engine.drain_episodes())
    driver.on_episodes(engine.drain_episodes())
    best: dict[int, float] = {}
    for task_id, reward in played:
        best[task_id] = max(best.get(task_id, 0.0), reward)
    tracked = driver.curriculum.algorithm.tasks
    for task_id, rewards in tracked.items():
        if rewards.ema is not None:
            assert rewards.best == pytest.approx(best[task_id])


def test_an_episode_of_an_unknown_task_is_refused():
    driver, engine = make_driver(bucketed_config(num_active_tasks=2), num_envs=2)
    batch = FakeEpisodeBatch(torch.tensor([0]), torch.tensor([99]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="env 0 finished an episode of task 99"):
        driver.on_episodes(batch)


def test_an_engine_refusal_names_the_task():
    game = small_game()
    bigger = apply_overrides(game, {"num_agents": 3, "map.room.agents": 3})
    config = CurriculumConfig(tasks=SingleTaskConfig(name="big", game=bigger))
    with pytest.raises(ValueError, match=r"\['big'\] cannot run in this engine: num_agents 3"):
        CurriculumDriver(config, game, FakeEngine(2), seed=0)


def test_task_reward_names_are_bounded():
    # Every sample brings a new task, so one log window sees far more tasks than the pool holds.
    tasks = BucketedTaskConfig(buckets={"agent.rewards.ore_red": RangeConfig(low=0.0, high=1.0)})
    config = CurriculumConfig(tasks=tasks, num_active_tasks=8, new_task_rate=1.0, min_presentations=0)
    driver, engine = make_driver(config, num_envs=16)
    for _ in range(8):
        for env in range(16):
            engine.end_episode(env, 1.0)
        driver.on_episodes(engine.drain_episodes())
    metrics = driver.metrics()
    task_names = [k for k in metrics if parse_task_reward_key(k)]
    assert metrics["curriculum/tasks_played"] > MAX_TASK_REWARD_METRICS
    assert len(task_names) == MAX_TASK_REWARD_METRICS


@pytest.mark.parametrize("algorithm", ["random", "learning_progress", "prioritize_regressed"])
def test_metrics_hold_the_required_names(algorithm):
    config = CurriculumConfig(algorithm=algorithm)
    driver, engine = make_driver(config, num_envs=2)
    engine.end_episode(0, 0.5)
    driver.on_episodes(engine.drain_episodes())
    metrics = driver.metrics()
    assert set(required_curriculum_metrics(config)) <= set(metrics)
    assert metrics[task_reward_key("default")] == 0.5


def test_driver_state_dict_round_trip():
    config = bucketed_config(num_active_tasks=4, new_task_rate=0.3, min_presentations=1)

    def run(driver, engine, episodes, seed):
        generator = torch.Generator().manual_seed(seed)
        for _ in range(episodes):
            env = int(torch.randint(engine.num_envs, (1,), generator=generator))
            engine.end_episode(env, float(torch.rand(1, generator=generator)))
            driver.on_episodes(engine.drain_episodes())
        return [engine.next_task[e][1] for e in range(engine.num_envs)], driver.metrics()

    driver, engine = make_driver(config, num_envs=3)
    run(driver, engine, 50, seed=0)
    assert driver.curriculum.evicted > 0
    state = json.loads(json.dumps(driver.state_dict()))

    resumed_engine = FakeEngine(3)
    resumed = CurriculumDriver(config, small_game(), resumed_engine, seed=99)
    resumed.load_state_dict(state)
    resumed_engine.playing = list(engine.playing)  # the engine restores its own episodes
    assert {e: t for e, (_, t) in resumed_engine.next_task.items()} == {
        e: t for e, (_, t) in engine.next_task.items()
    }
    assert [g for g, _ in resumed_engine.next_task.values()] == [g for g, _ in engine.next_task.values()]
    assert run(resumed, resumed_engine, 50, seed=1) == run(driver, engine, 50, seed=1)

    with pytest.raises(ValueError, match="drove 3 envs but the engine has 2"):
        CurriculumDriver(config, small_game(), FakeEngine(2), seed=0).load_state_dict(state)
