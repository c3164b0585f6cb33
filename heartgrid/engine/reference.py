"""The reference engine: RULES.md for ONE env in plain Python, the executable spec.

    env = ReferenceEnv(game, env_seed=rng.env_seed(system_seed, env_index))
    obs = env.reset()                                  # uint8 [agents, F, H, W]
    obs, rewards, terminals, truncations, info = env.step(actions)

`actions` holds one action per agent: flat indices into `env.action_space` ([agents]) or
(type, arg) pairs ([agents, 2]); out-of-range values are counted as invalid, never raised.
When a step ends the episode, `info["final_obs"]` is its last observation, `info["episode"]`
its `EpisodeSummary`, and the returned `obs` is already the first observation of the next
episode (the env resets in place, RULES.md step 6).

The step is written top to bottom in the order of RULES.md "One step"; the rules of each
action kind and of converters live in `reference_rules.py`. Speed is not a goal: the batched
engine (`batched.py`) must agree with this one, and tests compare them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from heartgrid.config.game import ConverterConfig, GameConfig
from heartgrid.config.items import ITEM_INDEX, ITEMS, TYPE_IDS
from heartgrid.engine.action_space import ActionSpace
from heartgrid.engine.features import FeatureRegistry
from heartgrid.engine.maps import AGENT, WALL, build_layout, object_config
from heartgrid.engine.reference_rules import (
    IDLE,
    Agent,
    Cell,
    Converter,
    Request,
    Wall,
    World,
    advance_converter,
    apply_actions,
)
from heartgrid.engine.rng import STREAM_DESYNC, STREAM_PRIORITY, hash32

INVALID_TYPE = "action.invalid_type"
INVALID_ARG = "action.invalid_arg"


def agent_stat_names(action_space: ActionSpace) -> list[str]:
    """Every per-agent stat an episode reports (zeros included), in a fixed order."""
    names = [f"{item}.{what}" for what in ("gained", "lost", "get", "put", "stolen") for item in ITEMS]
    for action in action_space.type_names:
        names += [f"action.{action}.success", f"action.{action}.failed"]
    return names + [INVALID_TYPE, INVALID_ARG, "action.attack.blocked", "status.frozen.ticks"]


def game_stat_names(game: GameConfig) -> list[str]:
    """Every per-game stat an episode reports: conversions and blocked steps per converter name."""
    converters = [n for n, obj in game.objects.items() if isinstance(obj, ConverterConfig)]
    return [f"{name}.{what}" for name in converters for what in ("conversions", "blocked")]


@dataclass(frozen=True)
class EpisodeSummary:
    reward: float  # episode reward, mean over the env's agents
    length: int
    agent_stats: dict[str, float]  # mean over the env's agents
    game_stats: dict[str, float]


class ReferenceEnv:
    def __init__(self, game: GameConfig, env_seed: int):
        self.game = game
        self.env_seed = env_seed
        self.action_space = ActionSpace.from_game(game)
        self.features = FeatureRegistry.default()
        self.num_agents = game.num_agents
        self.obs_shape = (len(self.features), game.obs_height, game.obs_width)
        self.agent_stat_names = agent_stat_names(self.action_space)
        self.game_stat_names = game_stat_names(game)
        # All agents play in the group with the lowest id (RULES.md "Maps").
        self.group = game.agent_group
        self.agent_config = game.group_agent_config(self.group)
        self.episode = 0
        self.t = 0
        self.length = 0
        self.world: World

    # ----------------------------------------------------------------------------------------
    # Episodes

    def reset(self) -> np.ndarray:
        """Start again from the first episode (desync included); returns its first observation."""
        self._start_episode(0)
        return self._observe()

    def episode_length(self, episode: int) -> int:
        if episode == 0 and self.game.desync_episodes:
            return 1 + hash32(self.env_seed, 0, STREAM_DESYNC) % self.game.max_steps
        return self.game.max_steps

    def _start_episode(self, episode: int) -> None:
        self.episode, self.t = episode, 0
        self.length = self.episode_length(episode)
        layout = build_layout(self.game, self.env_seed, episode)
        cfg = self.agent_config
        limits = [cfg.item_max.get(item, cfg.default_item_max) for item in ITEMS]
        group_id = self.game.groups[self.group].id
        grid: list[list[Cell]] = [[None] * len(layout.grid[0]) for _ in layout.grid]
        agents = []
        for index, (row, col) in enumerate(layout.agents):
            agents.append(Agent(index, row, col, self.group, group_id, cfg, list(limits)))
            grid[row][col] = agents[-1]
        converters = []
        for r, row_names in enumerate(layout.grid):
            for c, name in enumerate(row_names):
                if name is None or name == AGENT:
                    continue
                obj = object_config(self.game, name)
                if isinstance(obj, ConverterConfig):
                    conv = Converter(name, obj, r, c)
                    for item in obj.output_resources:
                        conv.inventory[ITEM_INDEX[item]] = obj.initial_resource_count
                    converters.append(conv)
                    grid[r][c] = conv
                else:
                    grid[r][c] = Wall(name, obj)
        self.world = World(self.game, grid, agents, converters, Counter())

    def summary(self) -> EpisodeSummary:
        """The stats of the episode so far (reported as it ends)."""
        agents = self.world.agents
        return EpisodeSummary(
            reward=sum(a.episode_reward for a in agents) / len(agents),
            length=self.t,
            agent_stats={s: sum(a.stats[s] for a in agents) / len(agents) for s in self.agent_stat_names},
            game_stats={s: float(self.world.game_stats[s]) for s in self.game_stat_names},
        )

    # ----------------------------------------------------------------------------------------
    # Accessors for tests and tools

    @property
    def agents(self) -> list[Agent]:
        return self.world.agents

    def inventory(self, agent: int) -> dict[str, int]:
        return {item: n for item, n in zip(ITEMS, self.world.agents[agent].inventory) if n}

    def agent_stats(self, agent: int) -> dict[str, int]:
        return {k: v for k, v in self.world.agents[agent].stats.items() if v}

    # ----------------------------------------------------------------------------------------
    # One step, in the order of RULES.md

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        world, agents = self.world, self.world.agents
        inventory_before = [list(a.inventory) for a in agents]
        stats_before = [Counter(a.stats) for a in agents]

        # 1. Decode actions; an invalid one is counted and does nothing else. Observations
        #    show the last valid action an agent sent (frozen or not).
        decoded = self._decode(actions)
        for agent, action in zip(agents, decoded):
            agent.penalty = 0.0
            if isinstance(action, str):
                agent.stats[action] += 1
            else:
                agent.last_action, agent.last_action_arg = action
        # 2. Frozen agents do not act.
        requests = []
        for agent, action in zip(agents, decoded):
            if agent.frozen > 0:
                agent.frozen -= 1
                agent.stats["status.frozen.ticks"] += 1
            elif not isinstance(action, str):
                requests.append(Request(agent, self.action_space.type_names[action[0]], action[1]))

        # 3. Converters advance.
        for conv in world.converters:
            advance_converter(conv, world.game_stats)

        # 4. Actions, kind by kind; conflicts go to the higher priority.
        priority = [
            hash32(self.env_seed, self.episode, self.t, STREAM_PRIORITY, i) for i in range(len(agents))
        ]
        apply_actions(world, requests, priority)

        # 5. Rewards.
        rewards = self._rewards(inventory_before, stats_before)
        for agent, reward in zip(agents, rewards.tolist()):
            agent.last_reward = reward
            agent.episode_reward += reward

        # 6. Episode end; 7. observations.
        self.t += 1
        done = self.t >= self.length
        terminals = np.full(len(agents), done and self.game.time_limit == "terminal")
        truncations = np.full(len(agents), done and self.game.time_limit == "truncate")
        obs = self._observe()
        info: dict = {"final_obs": None, "episode": None}
        if done:
            info["final_obs"], info["episode"] = obs, self.summary()
            self._start_episode(self.episode + 1)
            obs = self._observe()
        return obs, rewards, terminals, truncations, info

    def _decode(self, actions) -> list[tuple[int, int] | str]:
        """(type, arg) per agent, or the name of the invalid-action stat it counts."""
        actions = np.asarray(actions, dtype=np.int64)
        expected = (self.num_agents,) if actions.ndim == 1 else (self.num_agents, 2)
        if actions.shape != expected:
            raise ValueError(
                f"actions must have shape ({self.num_agents},) of flat indices or "
                f"({self.num_agents}, 2) of (type, arg) pairs, got {actions.shape}"
            )
        space = self.action_space
        decoded: list[tuple[int, int] | str] = []
        for action in actions.tolist():
            if actions.ndim == 1:
                decoded.append(space.flat[action] if 0 <= action < len(space) else INVALID_TYPE)
                continue
            type_id, arg = action
            if not 0 <= type_id < len(space.type_names):
                decoded.append(INVALID_TYPE)
            elif not 0 <= arg < space.type_num_args[type_id]:
                decoded.append(INVALID_ARG)
            else:
                decoded.append((type_id, arg))
        return decoded

    def _rewards(self, inventory_before: list[list[int]], stats_before: list[Counter]) -> np.ndarray:
        """Inventory rewards + stat rewards − failure penalties, then group sharing (step 5)."""
        raw = []
        for agent, before, stats_before_agent in zip(self.world.agents, inventory_before, stats_before):
            cfg = agent.config
            for item, a, b in zip(ITEMS, before, agent.inventory):
                agent.stats[f"{item}.gained"] += max(b - a, 0)
                agent.stats[f"{item}.lost"] += max(a - b, 0)
            reward = 0.0
            for item, a, b in zip(ITEMS, before, agent.inventory):
                if item in cfg.rewards:
                    r, cap = cfg.rewards[item], cfg.reward_caps.get(item, math.inf)
                    reward += min(r * b, cap) - min(r * a, cap)
            # Stat rewards are capped over the episode: the same formula on the stat's count.
            for stat, r in cfg.stat_rewards.items():
                cap = cfg.stat_reward_caps.get(stat, math.inf)
                reward += min(r * agent.stats[stat], cap) - min(r * stats_before_agent[stat], cap)
            raw.append(reward - agent.penalty)
        shared = []
        for agent, reward in zip(self.world.agents, raw):
            members = [i for i, a in enumerate(self.world.agents) if a.group == agent.group]
            pct = self.game.groups[agent.group].group_reward_pct
            pool = sum(pct * raw[i] for i in members)
            shared.append((1 - pct) * reward + pool / len(members))
        return np.asarray(shared, dtype=np.float32)

    # ----------------------------------------------------------------------------------------
    # Observations (RULES.md step 7, features.py)

    def _observe(self) -> np.ndarray:
        """Each agent's window of the feature planes; cells outside the grid read as walls."""
        f = self.features
        oh, ow = self.game.obs_height, self.game.obs_width
        ph, pw = oh // 2, ow // 2
        height, width = len(self.world.grid), len(self.world.grid[0])
        planes = np.zeros((len(f), height + 2 * ph, width + 2 * pw), dtype=np.uint8)
        planes[f["type_id"].id] = object_config(self.game, WALL).type_id + 1
        planes[f["type_id"].id, ph : ph + height, pw : pw + width] = 0
        for r, row in enumerate(self.world.grid):
            for c, obj in enumerate(row):
                if obj is not None:
                    self._write_cell(planes[:, r + ph, c + pw], obj)
        obs = np.stack([planes[:, a.row : a.row + oh, a.col : a.col + ow] for a in self.world.agents])
        completion = 255 * self.t // self.length
        for agent, agent_obs in zip(self.world.agents, obs):
            centre = agent_obs[:, ph, pw]
            centre[f["episode_completion_pct"].id] = completion
            centre[f["last_action"].id] = agent.last_action
            centre[f["last_action_arg"].id] = agent.last_action_arg
            # The reward as the batched engine stores it: float32, rounded half to even.
            scaled = np.rint(np.float32(agent.last_reward) * np.float32(100))
            centre[f["last_reward"].id] = int(np.clip(scaled, 0, 255))
        return obs

    def _write_cell(self, cell: np.ndarray, obj: Agent | Converter | Wall) -> None:
        f = self.features
        if isinstance(obj, Wall):
            cell[f["type_id"].id] = obj.config.type_id + 1
            cell[f["swappable"].id] = obj.config.swappable
            return
        if isinstance(obj, Agent):
            cell[f["type_id"].id] = TYPE_IDS[AGENT] + 1
            cell[f["agent:group"].id] = obj.group_id
            cell[f["agent:frozen"].id] = obj.frozen > 0
            cell[f["agent:orientation"].id] = obj.orientation
            cell[f["agent:color"].id] = obj.color
        else:
            cell[f["type_id"].id] = obj.config.type_id + 1
            cell[f["converting"].id] = obj.phase != IDLE
        for item, n in zip(ITEMS, obj.inventory):
            cell[f[f"inv:{item}"].id] = min(n, 255)
