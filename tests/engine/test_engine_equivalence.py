"""The batched engine against the reference engine, step by step (RULES.md is the contract).

Each example runs a few envs of a game on both engines with the same seed and the same random
actions (flat indices, (type, arg) pairs and invalid ones mixed), for hundreds of steps and
several episodes, and requires at every step equal observations, rewards, flags and final
observations, and equal stats for every finished episode. Inventories are part of the
observations (`inv:<item>` at the centre cell). Games are small and dense so that conflicts,
attacks, swaps, conversions and resets happen often.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heartgrid.config.game import GameConfig, GroupConfig, MapConfig, RandomRoomConfig
from heartgrid.config.items import ORIENTATION_DELTAS, TYPE_IDS
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.reference import ReferenceEnv
from heartgrid.engine.rng import env_seed
from heartgrid.recipes import get_recipe
from heartgrid.recipes.arena import SHAPED_CAPS, SHAPED_REWARDS


def dense_arena(combat: bool) -> GameConfig:
    """Two 7x6 rooms crowded with 5 agents each, every action enabled, short episodes."""
    objects = {"mine_red": 2, "generator_red": 1, "altar": 1, "block": 4, "wall": 2}
    if combat:
        objects.update({"armory": 2, "lasery": 2})
    game = GameConfig(
        num_agents=10,
        max_steps=60,
        obs_width=5,
        obs_height=7,
        map=MapConfig(room=RandomRoomConfig(width=7, height=6, agents=5, objects=objects),
                      instances=2, instance_border_width=1, border_width=1),
        groups={"team": GroupConfig(id=3, group_reward_pct=0.25)},
    )
    for name in ("move_cardinal", "move_8way", "change_color"):
        getattr(game.actions, name).enabled = True
    for name in ("mine_red", "generator_red", "altar", "armory", "lasery"):
        game.objects[name].cooldown = 2
        game.objects[name].initial_resource_count = 2
    game.objects["altar"].input_resources = {"battery_red": 1}
    game.objects["mine_red"].max_output = 3
    game.objects["generator_red"].conversion_ticks = 2
    game.objects["altar"].max_conversions = 4
    game.actions.swap.failure_penalty = 0.05
    game.actions.rotate.required_resources = {"ore_red": 1} if not combat else {}
    game.agent.rewards = dict(SHAPED_REWARDS)
    game.agent.reward_caps = dict(SHAPED_CAPS)
    game.agent.item_max = {"heart": 255, "laser": 3}
    game.agent.stat_rewards = {"action.put_items.success": 0.02, "ore_red.get": 0.01}
    game.agent.stat_reward_caps = {"ore_red.get": 0.03}
    game.agent.freeze_duration = 4
    if combat:
        game.actions.attack.consumed_resources = {"laser": 1}
        game.objects["lasery"].input_resources = {}  # free lasers and armor, to fight with
        game.objects["armory"].input_resources = {}
    else:
        game.actions.attack.consumed_resources = {}  # every attack with a target lands
        game.actions.noop.consumed_resources = {"ore_red": 1}
    return game


def grown_task(base: GameConfig) -> GameConfig:
    """`base` with more converters per room (an engine reallocates its converter tensors) and no
    stat rewards (a host flag of the step changes)."""
    other = base.model_copy(deep=True)
    other.map.room.objects = {**other.map.room.objects, "mine_red": 4, "generator_red": 2}
    other.agent.stat_rewards, other.agent.stat_reward_caps = {}, {}
    return other


def play_alongside(engines: list[BatchedEngine], gen: torch.Generator, steps: int) -> None:
    """Step `engines` with the same random actions; after each step they hold the same game,
    observations and rewards."""
    first = engines[0]
    for _ in range(steps):
        actions = torch.randint(0, len(first.action_names), (first.num_slots,), generator=gen)
        for engine in engines:
            engine.step(actions)
        a = first.world.game_state()
        for other in engines[1:]:
            b = other.world.game_state()
            assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
            assert torch.equal(first.obs, other.obs) and torch.equal(first.rewards, other.rewards)


def shrunk(recipe: str) -> GameConfig:
    """A recipe's game with shorter episodes (so that several end within a test)."""
    game = get_recipe(recipe).fn("cpu").game
    game.max_steps = 45
    return game


GAMES = {
    "dense_attack": lambda: dense_arena(combat=False),
    "dense_combat": lambda: dense_arena(combat=True),
    "small_easy_shaped": lambda: shrunk("small_easy_shaped"),
    "navigation_maze": lambda: shrunk("navigation_maze"),
}


def random_actions(rng: np.random.Generator, engine: BatchedEngine) -> np.ndarray:
    """A random policy that uses what it faces: converters (get/put), agents (attack), blocks
    (swap); otherwise uniform flat actions. Some steps send (type, arg) pairs instead, and a
    few actions are out of range."""
    S, space, f = engine.num_slots, engine.action_space, engine.features
    if rng.random() < 0.15:
        types = rng.integers(-1, len(space.type_names) + 1, size=S)
        args = rng.integers(-1, 10, size=S)
        return np.stack([types, args], axis=1)
    obs = engine.obs.numpy()
    cy, cx = obs.shape[2] // 2, obs.shape[3] // 2
    deltas = np.array(ORIENTATION_DELTAS)[obs[:, f["agent:orientation"].id, cy, cx]]
    front = obs[np.arange(S), f["type_id"].id, cy + deltas[:, 0], cx + deltas[:, 1]]
    actions = rng.integers(-1, len(space) + 1, size=S)  # includes -1 and len(space): invalid

    def use(mask: np.ndarray, name: str, p: float, args: int = 1) -> None:
        if name in space.type_names:
            pick = mask & (rng.random(S) < p)
            first = space.index(f"{name}_0")
            actions[pick] = first + rng.integers(0, args, size=int(pick.sum()))

    converter = (front > TYPE_IDS["wall"] + 1) & (front != TYPE_IDS["block"] + 1)
    use(converter, "put_items", 0.3)
    use(converter, "get_items", 0.6)
    use(front == TYPE_IDS["agent"] + 1, "attack", 0.5, args=9)
    use(front == TYPE_IDS["block"] + 1, "swap", 0.4)
    return actions


def assert_episode_equal(ref, batch, row: int) -> None:
    assert int(batch.lengths[row]) == ref.length
    assert float(batch.rewards[row]) == pytest.approx(ref.reward, abs=1e-4)
    assert set(batch.agent_stats) == set(ref.agent_stats)
    for name, value in ref.agent_stats.items():
        assert float(batch.agent_stats[name][row]) == pytest.approx(value, abs=1e-5), name
    for name, value in ref.game_stats.items():
        assert float(batch.game_stats[name][row]) == value, name


# How the batched engine steps (BatchedEngine's arguments): tensor operations with host skips
# (a CPU's tensor path), masked (a GPU's), through torch.compile, or natively (C++).
STEPS = {"tensor": {"host_skips": True}, "masked": {"host_skips": False}, "compiled": {"compile": True},
         "native": {"native": True}}


def run_both(game: GameConfig, num_envs: int, seed: int, steps: int, step: str = "tensor") -> int:
    """Step both engines; returns the number of episodes compared."""
    engine = BatchedEngine(game, num_envs=num_envs, device="cpu", seed=seed, **STEPS[step])
    refs = [ReferenceEnv(game, env_seed(seed, i)) for i in range(num_envs)]
    A = game.num_agents
    engine.reset()
    ref_obs = np.concatenate([env.reset() for env in refs])
    np.testing.assert_array_equal(engine.obs.numpy(), ref_obs)
    rng = np.random.default_rng(seed)
    episodes = 0
    for t in range(steps):
        actions = random_actions(rng, engine)
        engine.step(torch.as_tensor(actions))
        batch = engine.drain_episodes()
        ended = {int(e): row for row, e in enumerate(batch.env_ids)}
        for i, env in enumerate(refs):
            obs, rewards, terminals, truncations, info = env.step(actions[i * A:(i + 1) * A])
            where = f"step {t}, env {i}"
            np.testing.assert_array_equal(engine.obs[i * A:(i + 1) * A].numpy(), obs, err_msg=where)
            np.testing.assert_allclose(engine.rewards[i * A:(i + 1) * A].numpy(), rewards,
                                       atol=1e-5, err_msg=where)
            np.testing.assert_array_equal(engine.terminals[i * A:(i + 1) * A].numpy(), terminals)
            np.testing.assert_array_equal(engine.truncations[i * A:(i + 1) * A].numpy(), truncations)
            assert (i in ended) == (info["episode"] is not None), where
            if i in ended:
                np.testing.assert_array_equal(engine.final_obs[i * A:(i + 1) * A].numpy(),
                                              info["final_obs"], err_msg=where)
                assert_episode_equal(info["episode"], batch, ended[i])
                episodes += 1
    return episodes


@pytest.mark.parametrize("name", sorted(GAMES))
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**40))
def test_batched_engine_equals_reference(name: str, seed: int) -> None:
    game = GAMES[name]()
    episodes = run_both(game, num_envs=3, seed=seed, steps=200)
    assert episodes >= 3  # desync ends every env's first episode within max_steps


@pytest.mark.parametrize("name", ["dense_attack", "dense_combat"])
def test_batched_engine_without_host_skips_equals_reference(name: str) -> None:
    """The fully masked path (what a GPU runs) on the CPU: no kind returns early."""
    assert run_both(GAMES[name](), num_envs=3, seed=17, steps=130, step="masked") >= 3


@pytest.mark.parametrize("name", sorted(GAMES))
def test_compiled_engine_equals_reference(name: str) -> None:
    """The step through torch.compile (compiled.py), with flat and (type, arg) actions."""
    assert run_both(GAMES[name](), num_envs=3, seed=23, steps=130, step="compiled") >= 3


@pytest.mark.parametrize("name", sorted(GAMES))
@pytest.mark.parametrize("seed", [5, 2**40 + 3])
def test_native_engine_equals_reference(name: str, seed: int) -> None:
    """The C++ step (native.py), with flat and (type, arg) actions."""
    assert run_both(GAMES[name](), num_envs=3, seed=seed, steps=200, step="native") >= 3


@pytest.mark.parametrize("step", ["tensor", "native"])
def test_arena_equals_reference_for_a_few_steps(step: str) -> None:
    """The full-size default recipe (24 agents, 62x62) on both engines."""
    game = get_recipe("arena_basic_easy_shaped").fn("cpu").game
    game.max_steps = 12
    assert run_both(game, num_envs=2, seed=7, steps=25, step=step) >= 2
