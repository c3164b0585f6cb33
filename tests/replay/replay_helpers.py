"""Shared pieces of the replay tests: games that exercise every kind of change, a random policy
that uses what it faces, and the state of an env read straight from each engine (not through
the recorder) in the reader's terms, to compare ReplayState.at(t) with."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from heartgrid.config.game import GameConfig, GroupConfig, MapConfig, RandomRoomConfig
from heartgrid.config.items import ITEMS, ORIENTATION_DELTAS, TYPE_IDS
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.reference import ReferenceEnv
from heartgrid.engine.reference_rules import COOLING, CONVERTING, IDLE, Agent, Converter
from heartgrid.recipes import build_config

PHASES = {IDLE: 0, CONVERTING: 1, COOLING: 2}


def recipe_game(recipe: str, max_steps: int, desync: bool = False) -> GameConfig:
    game = build_config(recipe, ["system.device=cpu"]).game
    game.max_steps = max_steps
    game.desync_episodes = desync
    return game


def busy_arena(max_steps: int) -> GameConfig:
    """arena_combat (24 agents, blocks and swap, attacks) with free lasers and armor and
    converters that start full, so that freezes, steals and conversions happen early."""
    game = recipe_game("arena_combat", max_steps)
    for name in ("lasery", "armory"):
        game.objects[name].input_resources = {}
    for name in ("mine_red", "generator_red", "altar", "lasery", "armory"):
        game.objects[name].initial_resource_count = 2
        game.objects[name].cooldown = 3
    return game


def dense_game(max_steps: int) -> GameConfig:
    """Two crowded rooms, every action enabled (colors, diagonal moves), shared rewards, a
    terminal time limit, a converter that takes two ticks."""
    objects = {"mine_red": 2, "generator_red": 1, "altar": 1, "block": 4, "armory": 1, "lasery": 1}
    game = GameConfig(
        num_agents=8, max_steps=max_steps, time_limit="terminal", desync_episodes=False,
        obs_width=5, obs_height=5,
        map=MapConfig(room=RandomRoomConfig(width=6, height=6, agents=4, objects=objects),
                      instances=2, instance_border_width=1, border_width=1),
        groups={"team": GroupConfig(id=3, group_reward_pct=0.25)},
    )
    for name in ("move_cardinal", "move_8way", "change_color"):
        getattr(game.actions, name).enabled = True
    for name in ("mine_red", "generator_red", "altar", "armory", "lasery"):
        game.objects[name].cooldown = 2
        game.objects[name].initial_resource_count = 2
    game.objects["generator_red"].conversion_ticks = 2
    game.objects["altar"].input_resources = {"battery_red": 1}
    game.objects["lasery"].input_resources = {}
    game.objects["armory"].input_resources = {}
    game.agent.rewards = {"ore_red": 0.1, "battery_red": 0.3, "heart": 1.0}
    game.agent.freeze_duration = 3
    return game


def facing_actions(rng: np.random.Generator, engine: BatchedEngine) -> torch.Tensor:
    """Uniform flat actions, but agents facing a converter, an agent or a block often use it
    (put/get, attack, swap); a few actions are out of range, and some steps send (type, arg)
    pairs instead of flat ids."""
    S, space, f = engine.num_slots, engine.action_space, engine.features
    if rng.random() < 0.1:
        types = rng.integers(-1, len(space.type_names) + 1, size=S)
        args = rng.integers(-1, 10, size=S)
        return torch.as_tensor(np.stack([types, args], axis=1))
    obs = engine.obs.cpu().numpy()
    cy, cx = obs.shape[2] // 2, obs.shape[3] // 2
    deltas = np.array(ORIENTATION_DELTAS)[obs[:, f["agent:orientation"].id, cy, cx]]
    front = obs[np.arange(S), f["type_id"].id, cy + deltas[:, 0], cx + deltas[:, 1]]
    actions = rng.integers(-1, len(space) + 1, size=S)  # -1 and len(space) are invalid

    def use(mask: np.ndarray, name: str, p: float, args: int = 1) -> None:
        if name in space.type_names:
            pick = mask & (rng.random(S) < p)
            actions[pick] = space.index(f"{name}_0") + rng.integers(0, args, size=int(pick.sum()))

    converter = (front > TYPE_IDS["wall"] + 1) & (front != TYPE_IDS["block"] + 1)
    use(converter, "put_items", 0.3)
    use(converter, "get_items", 0.6)
    use(front == TYPE_IDS["agent"] + 1, "attack", 0.6, args=9)
    use(front == TYPE_IDS["block"] + 1, "swap", 0.5)
    return torch.as_tensor(actions)


def flat_ids(actions: torch.Tensor, engine: BatchedEngine, env: int) -> list[int]:
    """The flat ids a replay records for env `env`'s actions (-1 for invalid pairs)."""
    A, space = engine.num_agents, engine.action_space
    mine = actions[env * A:(env + 1) * A].tolist()
    if actions.dim() == 1:
        return mine
    return [space.flat.index((t, a)) if (t, a) in space.flat else -1 for t, a in mine]


# --------------------------------------------------------------------------------------------
# Engine state in the reader's terms


def batched_snapshot(engine: BatchedEngine, env: int) -> dict[str, Any]:
    """Env `env`'s state read from the batched engine's world tensors."""
    w, d = engine.world, engine.world.dims
    A, F = engine.num_agents, d.num_features
    slots = slice(env * A, (env + 1) * A)
    planes = w.planes[: d.cells].view(d.num_envs, d.padded_height, d.padded_width, F)[env]
    grid = planes[d.pad_r: d.pad_r + d.height, d.pad_c: d.pad_c + d.width,
                  engine.features["type_id"].id].cpu().numpy().astype(np.int64) - 1

    def row_col(cells: np.ndarray) -> np.ndarray:
        local = cells - env * d.cells_per_env
        return np.stack([local // d.padded_width - d.pad_r, local % d.padded_width - d.pad_c], axis=1)

    cpe = d.conv_per_env
    convs = slice(env * cpe, (env + 1) * cpe)
    active = w.conv_active[convs].cpu().numpy()
    timer = w.conv_timer[convs].cpu().numpy()[active]
    cooldown = w.conv_finish_at[convs].cpu().numpy()[active] - 1
    return {
        "grid": grid,
        "agent_pos": row_col(w.agent_cell[slots].cpu().numpy()),
        "conv_pos": row_col(w.conv_cell[convs].cpu().numpy()[active]),
        "group": [int(w.param_group_id[env])] * A,
        "color": w.agent_color[slots].cpu().numpy().tolist(),
        "orientation": w.agent_orientation[slots].cpu().numpy().tolist(),
        "inventory": w.agent_inventory[slots].cpu().numpy().tolist(),
        "frozen": w.agent_frozen[slots].cpu().numpy().tolist(),
        "reward": w.agent_episode_reward[slots].cpu().numpy().copy(),
        "conv_inventory": w.conv_inventory[convs].cpu().numpy()[active].tolist(),
        # converters.py: one countdown; above the cooldown converting, else cooling, 0 ready.
        "conv_state": np.where(timer == 0, 0, np.where(timer > cooldown, 1, 2)).tolist(),
    }


def assert_matches_batched(state: dict[str, Any], snap: dict[str, Any], where: str) -> None:
    objects = np.array(state["objects"], dtype=np.int64)
    A, C = len(snap["agent_pos"]), len(snap["conv_pos"])
    grid = np.full_like(snap["grid"], -1)
    for type_id, row, col in objects:
        assert grid[row, col] == -1, f"{where}: two objects on cell ({row}, {col})"
        grid[row, col] = type_id
    assert (grid == snap["grid"]).all(), f"{where}: the objects differ from the engine's grid"
    assert (objects[:A, 1:] == snap["agent_pos"]).all(), f"{where}: agent positions"
    assert (objects[A:A + C, 1:] == snap["conv_pos"]).all(), f"{where}: converter positions"
    for key in ("group", "color", "orientation", "inventory", "frozen"):
        assert state["agents"][key] == snap[key], f"{where}: agents.{key}"
    # Summed in float32 by both: equal to the bit.
    assert np.array_equal(np.array(state["agents"]["reward"], dtype=np.float32), snap["reward"]), \
        f"{where}: rewards so far {state['agents']['reward']} != {snap['reward'].tolist()}"
    assert state["converters"]["inventory"] == snap["conv_inventory"], f"{where}: converter inventories"
    assert state["converters"]["state"] == snap["conv_state"], f"{where}: converter states"


class ReferenceTracker:
    """The same env played by the reference engine (plain Python objects): object identity
    survives swaps there, so it also checks which block the replay says moved, and its
    converters keep an explicit phase."""

    def __init__(self, game: GameConfig, env_seed: int):
        self.env = ReferenceEnv(game, env_seed)
        self.env.reset()
        self.identity: list[object] = []

    def bind(self, document: dict[str, Any]) -> None:
        """Map the replay's object ids to the reference's objects by their start cells."""
        grid = self.env.world.grid
        self.identity = [grid[r][c] for _, r, c in document["objects"]]
        assert all(obj is not None for obj in self.identity)

    def step(self, actions: np.ndarray) -> tuple[list[int] | None, bool]:
        """Step; returns each agent's ok (1, 0, -1 frozen) and whether the episode ended (then
        ok is None: the env has reset in place, its stats are the next episode's)."""
        before = [dict(a.stats) for a in self.env.world.agents]
        _, _, _, _, info = self.env.step(actions)
        if info["episode"] is not None:
            return None, True
        ok = []
        for agent, stats in zip(self.env.world.agents, before):
            def grew(name: str) -> bool:
                return agent.stats[name] > stats.get(name, 0)
            if grew("status.frozen.ticks"):
                ok.append(-1)
            else:
                ok.append(int(any(grew(n) for n in list(agent.stats)
                                  if n.startswith("action.") and n.endswith(".success"))))
        return ok, False

    def snapshot(self) -> dict[str, Any]:
        world = self.env.world
        where = {id(obj): (r, c) for r, row in enumerate(world.grid)
                 for c, obj in enumerate(row) if obj is not None}
        agents: list[Agent] = world.agents
        convs = [o for o in self.identity if isinstance(o, Converter)]
        return {
            "positions": [list(where[id(obj)]) for obj in self.identity],
            "orientation": [a.orientation for a in agents],
            "inventory": [list(a.inventory) for a in agents],
            "frozen": [a.frozen for a in agents],
            "color": [a.color % 256 for a in agents],
            "reward": [a.episode_reward for a in agents],
            "conv_inventory": [list(c.inventory) for c in convs],
            "conv_state": [PHASES[c.phase] for c in convs],
        }


def assert_matches_reference(state: dict[str, Any], snap: dict[str, Any], where: str) -> None:
    assert [o[1:] for o in state["objects"]] == snap["positions"], f"{where}: object positions"
    for key in ("orientation", "inventory", "frozen", "color"):
        assert state["agents"][key] == snap[key], f"{where}: agents.{key}"
    np.testing.assert_allclose(state["agents"]["reward"], snap["reward"], atol=1e-4, err_msg=where)
    assert state["converters"]["inventory"] == snap["conv_inventory"], f"{where}: converter inventories"
    assert state["converters"]["state"] == snap["conv_state"], f"{where}: converter states"


def items_held(state: dict[str, Any], item: str) -> int:
    return sum(row[ITEMS.index(item)] for row in state["agents"]["inventory"])
