"""The batched game engine: every env of a batch steps at once, as torch operations.

    engine = BatchedEngine(game, num_envs=64, device="cpu", seed=0)
    engine.reset()
    engine.step(actions)        # [slots] flat indices, or [slots, 2] (type, arg) pairs
    engine.obs, engine.rewards, engine.terminals, engine.truncations, engine.final_obs
    engine.drain_episodes()     # finished episodes since the last drain, on the CPU

It implements RULES.md exactly as `reference.py` does for one env (tests compare them step by
step). The same code runs on CPU and CUDA; all state lives on the engine's device (`World`,
state.py). A step is a fixed sequence of tensor operations over all slots: no Python loop over
agents or envs, and no device-to-host synchronisation. The host only keeps what it can know
without looking at the device: each env's step counter and episode length (episodes end only
by time), so it knows which envs end on a step and resets exactly those, in place.

Module map: tables.py (a game as numbers), tasks.py (per-env task rows), mapgen.py (maps),
decode.py (steps 1-2), converters.py (step 3), actions.py (step 4), observe.py (step 7),
episodes.py (episode starts and the episode log), stats.py (stat names), state.py (the
tensors), compiled.py (the step through torch.compile), native.py and csrc/step.cpp (steps 1-7
in C++ on a CPU: the same game, ~2.4x faster there; episode starts and ends stay here).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import torch

from heartgrid.config.game import GameConfig
from heartgrid.devices import to_device
from heartgrid.engine.action_space import ActionSpace
from heartgrid.engine.actions import ActionKinds
from heartgrid.engine.compiled import CompiledStep
from heartgrid.engine.converters import Converters
from heartgrid.engine.decode import ActionDecoder
from heartgrid.engine.episodes import EpisodeLog, begin_episodes
from heartgrid.engine.features import FeatureRegistry
from heartgrid.engine.mapgen import MapGenerator
from heartgrid.engine.native import NativeStep, NativeUnavailable, available
from heartgrid.engine.observe import Observer
from heartgrid.engine.priority import PriorityKeys
from heartgrid.engine.rng import STREAM_DESYNC, env_seed, hash32
from heartgrid.engine.state import PRIORITY_BLOCK, Dims, World, all_stats, env_rows, sum_in_order
from heartgrid.engine.stats import AgentStatLayout, EpisodeBatch
from heartgrid.engine.tables import TaskTables, compatibility_error, compile_game
from heartgrid.engine.tasks import slot_names, write_task

STATE_VERSION = 1


class BatchedEngine:
    """`num_envs` copies of `game` on `device`; slot = env * num_agents + agent."""

    def __init__(self, game: GameConfig, num_envs: int, device: str | torch.device = "cpu",
                 seed: int = 0, host_skips: bool | None = None, first_env: int = 0,
                 threads: int | None = 1, gather_threads: int | None = None, compile: bool = False,
                 native: bool | None = None):
        """threads: CPU threads of a tensor step's ~250 small operations (CPU; None: torch's
        setting): a second thread does not help them and slows them several times on a busy
        machine. gather_threads: threads of a tensor step's observation gather, one
        memory-bound ~4 MB copy per step at 64 envs that two threads do ~1.9x faster; None: the
        process's count, which training and `bench env` choose by the machine's load
        (heartgrid/threads.py). Results are the same for any counts. first_env: this engine's
        first env in a batch split across processes (torch.distributed ranks), seeded as in one
        engine holding them all. host_skips: skip work nobody needs after reading a flag on the
        host (actions.py, converters.py); default on for a CPU, off for a GPU; the same game
        either way. compile: run the device part of a step through torch.compile (compiled.py;
        the masked path, so not with host_skips). native: run steps 1-7 as one call into C++
        on the calling thread (native.py; CPU only, the fastest CPU step); None: on a CPU
        unless `compile` or `host_skips` chose a tensor path, and if the C++ step can be built
        here (else the tensor step, with a warning)."""
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if compile and host_skips:
            raise ValueError("a compiled step runs the masked path: compile=True needs host_skips off")
        native, self.native_problem = _choose_native(native, torch.device(device), compile, host_skips)
        """Why the native step is not running though it was not turned off (None: it is, or was)."""
        self.game = game
        self.device = torch.device(device)
        self.threads = threads if self.device.type == "cpu" else None
        self.gather_threads = gather_threads if self.device.type == "cpu" else None
        self._process_threads = torch.get_num_threads()
        self.seed = seed
        self.features = FeatureRegistry.default()
        self.action_space = ActionSpace.from_game(game)
        self.action_names = self.action_space.names
        self.num_envs, self.num_agents = num_envs, game.num_agents
        self.num_slots = num_envs * game.num_agents
        self.obs_shape = (len(self.features), game.obs_height, game.obs_width)
        self.stat_layout = AgentStatLayout(self.action_space.type_names)

        base = compile_game(game)
        height, width = game.map.grid_shape
        dims = Dims(
            num_envs=num_envs, num_agents=game.num_agents, instances=game.map.instances,
            room_cells=len(base.rank_code), agents_per_room=len(base.agent_rank),
            conv_per_room=base.converters_per_room, num_types=len(self.action_space.type_names),
            num_stats=len(self.stat_layout), height=height, width=width,
            # The padding must hold an observation window and an attack scan (3 cells ahead).
            pad_r=max(game.obs_height // 2, 3), pad_c=max(game.obs_width // 2, 3),
            num_features=len(self.features), obs_height=game.obs_height, obs_width=game.obs_width,
        )
        self.world = World(dims, self.device)
        channel = {f.name: f.id for f in self.features}
        self.maps = MapGenerator(game, (dims.pad_r, dims.pad_c), dims.num_features,
                                 channel["type_id"], channel["swappable"], self.device)
        layout = self.stat_layout
        if host_skips is None:  # the native step keeps no converter caches (converters.py)
            host_skips = self.device.type == "cpu" and not compile and not native
        self.converters = Converters(host_skips, self.device)
        self.kinds = ActionKinds(self.world, self.action_space.type_names, channel["type_id"],
                                 channel["swappable"], layout, host_skips, self.converters, compile)

        # Buffers the trainer reads in place (see observe.py for the obs memory layout).
        S, (F, H, W) = self.num_slots, self.obs_shape
        self._obs_store = torch.zeros(S, H, W, F, dtype=torch.uint8, device=self.device)
        self._final_store = torch.zeros_like(self._obs_store)
        self.obs = self._obs_store.permute(0, 3, 1, 2)
        self.final_obs = self._final_store.permute(0, 3, 1, 2)
        self.rewards = torch.zeros(S, dtype=torch.float32, device=self.device)
        self.terminals = torch.zeros(S, dtype=torch.bool, device=self.device)
        self.truncations = torch.zeros(S, dtype=torch.bool, device=self.device)
        self.observer = Observer(self.world, self.features, self._obs_store)

        space = self.action_space
        self.decoder = ActionDecoder(space, layout, self.world)  # steps 1-2
        self._attack_type = space.type_names.index("attack") if "attack" in space.type_names else -1
        self.priorities = PriorityKeys(self.world)
        self._env_of_slot = self.kinds.env_of_slot
        self._inventory_before = torch.zeros(S, 10, dtype=torch.int16, device=self.device)
        self._ones = torch.ones(S, 1, dtype=torch.int32, device=self.device)
        self._bind_views()
        self.compiled = CompiledStep(self._device_step, self.device) if compile else None
        """The compiled device step (None: eager); `compiled.note` says what compiling cost."""
        self.native = NativeStep(self) if native else None
        """The C++ step (native.py), or None."""
        self.step_kind = "native" if native else "compiled" if compile else "tensor"
        """How steps run: `native` (C++), `compiled` (torch.compile) or `tensor` (eager)."""

        # Host-side bookkeeping: only what is known without reading the device.
        self._tables: list[TaskTables] = [base] * num_envs
        self._task_ids = np.zeros(num_envs, dtype=np.int64)
        self._pending: dict[int, tuple[TaskTables, int]] = {}
        self._episode = np.zeros(num_envs, dtype=np.int64)
        self._step = np.zeros(num_envs, dtype=np.int64)
        self._length = np.ones(num_envs, dtype=np.int64)
        self._flags_set = False
        self._started = False
        self.truncated_envs = np.empty(0, dtype=np.int64)
        """Env ids (host) whose episode the last step truncated; empty on most steps. Lets the
        trainer skip the truncation bootstrap without reading `truncations` back from the device."""
        self.end_hooks: list[Callable[[list[int]], None]] = []
        """Called with the env ids whose episode the current step ended, after their final
        observation and before they reset in place (replay recorders read the final state)."""
        # With NPCs (game.policy_agents_pct < 1) the policy's agents and the NPCs are reported apart.
        self.policy_agents = game.policy_agents
        self.log = EpisodeLog(layout.names, game.policy_agents if game.policy_agents < game.num_agents else None)
        self.log.add_game_stat_objects(_converter_names(game))
        self._all_envs = torch.arange(num_envs, device=self.device)
        self.first_env = first_env
        self._seeds = [env_seed(seed, first_env + i) for i in range(num_envs)]
        self.world.env_seed.copy_(torch.tensor(self._seeds))
        write_task(self.world, self._all_envs, base)
        self._refresh_flags()

    # ----------------------------------------------------------------------------------------
    # Where each env is (host-side, no device read; for replay recorders and tools)

    @property
    def started(self) -> bool:
        return self._started

    def env_tables(self, env: int) -> TaskTables:
        """The compiled task env `env` plays now (its `game`, `terminal`, ...); read only."""
        return self._tables[env]

    def env_episode(self, env: int) -> int:
        return int(self._episode[env])

    def env_step(self, env: int) -> int:
        """Steps taken in env `env`'s current episode."""
        return int(self._step[env])

    # ----------------------------------------------------------------------------------------
    # Tasks

    def set_next_task(self, env_ids: list[int], games: list[GameConfig], task_ids: list[int]) -> None:
        """From its next episode on, env `env_ids[i]` plays `games[i]` (reported as `task_ids[i]`)."""
        if not len(env_ids) == len(games) == len(task_ids):
            raise ValueError(f"set_next_task needs as many games and task ids as env ids, got "
                             f"{len(env_ids)} envs, {len(games)} games, {len(task_ids)} task ids")
        compiled: dict[int, TaskTables] = {}
        for env, game, task in zip(env_ids, games, task_ids):
            if not 0 <= env < self.num_envs:
                raise ValueError(f"env id {env} is out of range 0..{self.num_envs - 1}")
            if id(game) not in compiled:
                problem = compatibility_error(self.game, game)
                if problem:
                    raise ValueError(f"task {task} cannot run in this engine: {problem}")
                compiled[id(game)] = compile_game(game)
            tables = compiled[id(game)]
            if tables.converters_per_room > self.world.dims.conv_per_room:
                self._grow_converters(tables.converters_per_room)
            self.log.add_game_stat_objects(_converter_names(game))
            self._pending[int(env)] = (tables, int(task))

    def _grow_converters(self, conv_per_room: int) -> None:
        self.world.grow_converters(conv_per_room)
        self.converters.invalidate()
        self.kinds.bind(self.world)
        self.observer.bind(self.world)
        self.observer.refresh_static(self.world)
        self._bind_views()
        if self.native is not None:
            self.native.bind(self.world)

    def _take_pending(self, envs: list[int]) -> None:
        by_tables: dict[int, list[int]] = {}
        for env in envs:
            if env in self._pending:
                tables, task = self._pending.pop(env)
                self._tables[env], self._task_ids[env] = tables, task
                by_tables.setdefault(id(tables), []).append(env)
        for group in by_tables.values():
            ids = self._to_device(np.array(group))
            write_task(self.world, ids, self._tables[group[0]])
        if by_tables:
            self._refresh_flags()

    def _refresh_flags(self) -> None:
        """Host flags that let a step skip work no env's task needs."""
        self._stat_rewards = any(t.has_stat_rewards for t in self._tables)
        self._sharing = any(t.group_pct > 0 for t in self._tables)
        # Attacks pay inside their kind; only other actions' costs are paid after the kinds.
        other = [t for t, name in enumerate(self.action_space.type_names) if name != "attack"]
        self._costs = any(t.action_cost[other].any() for t in self._tables)
        self._needs = any(t.action_need[other].any() for t in self._tables)
        self._penalties = any(t.action_penalty.any() for t in self._tables)
        if self.native is not None:
            self.native.set_flags(self._needs, self._costs, self._penalties, self._stat_rewards, self._sharing)

    # ----------------------------------------------------------------------------------------
    # Episodes

    def reset(self) -> None:
        """Start every env over from its first episode (pending tasks apply now)."""
        with self._own_threads():
            self._reset()

    @contextlib.contextmanager
    def _own_threads(self) -> Iterator[None]:
        previous = self._process_threads = torch.get_num_threads()
        if self.threads is None or previous == self.threads:
            yield
            return
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def _gather(self) -> None:
        """Step 7's windows, on the gather's threads (see __init__)."""
        own, threads = torch.get_num_threads(), self.gather_threads or self._process_threads
        if threads == own:
            self.observer.gather(self.world)
            return
        torch.set_num_threads(threads)
        try:
            self.observer.gather(self.world)
        finally:
            torch.set_num_threads(own)

    @torch.inference_mode()
    def _reset(self) -> None:
        self._episode[:] = 0
        self.priorities.row = PRIORITY_BLOCK
        self._begin(list(range(self.num_envs)), self._all_envs)
        self.terminals.zero_()
        self.truncations.zero_()
        self._flags_set = False
        self.rewards.zero_()
        self._started = True

    def _begin(self, envs: list[int], env_ids: torch.Tensor) -> None:
        """Begin episode self._episode[env] in each env of `envs`, then observe its agents."""
        self._take_pending(envs)
        for env in envs:
            tables = self._tables[env]
            first = self._episode[env] == 0 and tables.desync_episodes
            desync = 1 + hash32(self._seeds[env], 0, STREAM_DESYNC) % tables.max_steps
            self._length[env] = desync if first else tables.max_steps
        self._step[envs] = 0
        w = self.world
        slots, convs = begin_episodes(w, self.maps, env_ids, self._to_device(self._episode[envs]),
                                      self._to_device(self._length[envs]), self.observer.first_converter_channel)
        self.priorities.restart(w, env_ids)
        self.converters.began(convs)
        self.observer.refresh_static(w)
        self.observer.refresh(w, self.converters.changed())
        self.observer.observe_new(w, slots)

    def _to_device(self, values: np.ndarray, dtype: torch.dtype = torch.int64) -> torch.Tensor:
        """Host values to the device without waiting for the device's queue (on a GPU a
        blocking copy would stall every step that resets an env)."""
        return to_device(torch.as_tensor(values, dtype=dtype), self.device)

    def drain_episodes(self) -> EpisodeBatch:
        """Episodes finished since the last drain (CPU tensors; one device-to-host copy)."""
        return self.log.drain()

    # ----------------------------------------------------------------------------------------
    # One step (RULES.md "One step")

    def _bind_views(self) -> None:
        """Views of the world's tensors used every step (rebuilt if the world reallocates)."""
        w, layout, S = self.world, self.stat_layout, self.num_slots
        self._inventory = w.agent_inventory[:S]
        self.decoder.bind(w)
        self._gained = w.agent_item_stats[layout.kind("gained")]
        self._lost = w.agent_item_stats[layout.kind("lost")]
        self._reward_weight = w.param_reward_weight.unsqueeze(1)  # [N, 1, 10]
        self._reward_cap = w.param_reward_cap.unsqueeze(1)

    def step(self, actions: torch.Tensor) -> None:
        """One step of every env (RULES.md "One step"), with `actions` [slots] of flat action
        indices or [slots, 2] of (type, arg)."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        with self._own_threads():
            self._step_all(actions)

    # inference_mode rather than no_grad: ~10% less overhead per operation on a CPU. The
    # buffers stay normal tensors (they are only modified in place here); what a step creates
    # and keeps (finished-episode records) is only ever read.
    @torch.inference_mode()
    def _step_all(self, actions: torch.Tensor) -> None:
        actions = self.decoder.check(actions, fresh=self.compiled is not None)
        key = self.priorities.next(self.world)  # host-side block counter: outside the graph
        w = self.world
        if self.native is not None:  # steps 1-7, one env after another
            self.native(actions, key)
        else:
            (self.compiled or self._device_step)(actions, key)
            self._gather()  # step 7
            self.observer.observe_globals(w, self.rewards)
        # Step 6: time passes; the host knows which envs end without asking the device.
        self._step += 1
        if self._flags_set:
            self.terminals.zero_()
            self.truncations.zero_()
            self._flags_set = False
            self.truncated_envs = np.empty(0, dtype=np.int64)
        ended = np.flatnonzero(self._step >= self._length)
        if ended.size:
            self._end(ended.tolist())

    def _device_step(self, actions: torch.Tensor, key: torch.Tensor) -> None:
        """Steps 1-6 and the grid's feature rows: tensor operations only, no host reads
        without host skips (what `compiled` runs through torch.compile)."""
        w = self.world
        self._inventory_before.copy_(self._inventory)
        stats_before = all_stats(w) if self._stat_rewards else None

        intent = self.decoder.decode(w, actions, key)  # steps 1-2
        self.converters.advance(w)  # step 3
        rows = None  # each slot's row of the per-env action parameters, if any are needed
        if self._needs or self._costs or self._penalties:
            rows = self._env_of_slot * w.dims.num_types + intent.type
        need = w.param_action_need.index_select(0, rows) if self._needs else None
        self.kinds.apply(w, intent, need)  # step 4
        if self._costs:  # attacks pay inside their kind; every other success pays here
            paid = intent.success & (intent.type != self._attack_type)
            self._inventory.addcmul_(w.param_action_cost.index_select(0, rows), paid.unsqueeze(1),
                                     value=-1)
        failed = intent.acting & ~intent.success
        column = 2 * intent.type + failed  # action.<type>.success, or .failed just after it
        column.masked_fill_(~intent.acting, self.stat_layout.trash)
        w.agent_counts.scatter_add_(1, column.unsqueeze(1), self._ones)
        penalties = w.param_action_penalty.index_select(0, rows) * failed if self._penalties else None

        self._rewards(penalties, stats_before)  # step 5
        w.agent_episode_reward.add_(self.rewards)
        w.env_step.add_(1)  # step 6 (the host's counters follow in _step_all)
        self.observer.refresh(w, self.converters.changed())

    def _rewards(self, penalties: torch.Tensor | None, stats_before: torch.Tensor | None) -> None:
        """Step 5 into self.rewards; also counts <item>.gained / .lost."""
        w, N, A = self.world, self.num_envs, self.num_agents
        change = self._inventory - self._inventory_before
        self._gained.add_(change.clamp(min=0))
        self._lost.sub_(change.clamp_(max=0))

        # Inventory rewards: sum_items min(r*b, cap) - min(r*a, cap) = value(b) - value(a), with
        # value(a) kept from the previous step (0 when an episode begins). float64 like
        # reference.py, so that both engines round rewards to float32 the same way.
        held = self._inventory.view(N, A, 10).double()
        value = sum_in_order(torch.minimum(self._reward_weight * held, self._reward_cap), 2).view(-1)
        reward = (value - w.agent_inventory_value).view(N, A)
        w.agent_inventory_value.copy_(value)
        if stats_before is not None:
            n = w.dims.num_stats
            sw, sc = w.param_stat_weight.unsqueeze(1), w.param_stat_cap.unsqueeze(1)
            sb = all_stats(w).view(N, A, n).double()
            sa = stats_before.view(N, A, n).double()
            reward += sum_in_order(torch.minimum(sw * sb, sc) - torch.minimum(sw * sa, sc), 2)
        reward = reward.view(-1)
        if penalties is not None:
            reward = reward - penalties
        if self._sharing:  # every agent is in its env's agent_group (RULES.md "Maps")
            pct = w.param_group_pct.unsqueeze(1)
            shares = sum_in_order(pct * reward.view(N, A), 1).unsqueeze(1) / A
            reward = ((1 - pct) * reward.view(N, A) + shares).view(-1)
        self.rewards.copy_(reward)

    def _end(self, envs: list[int]) -> None:
        """Flags, final observations and episode records of envs that ended; then reset them."""
        for hook in self.end_hooks:
            hook(envs)
        env_ids = self._to_device(np.array(envs))
        slots = env_rows(env_ids, self.num_agents)
        terminal = self._to_device(np.array([self._tables[e].terminal for e in envs]), torch.bool)
        terminal = terminal.repeat_interleave(self.num_agents)
        self.terminals[slots] = terminal
        self.truncations[slots] = ~terminal
        self._flags_set = True
        self.truncated_envs = np.array([e for e in envs if not self._tables[e].terminal], dtype=np.int64)
        self._final_store[slots] = self._obs_store[slots]
        d = self.world.dims
        self.log.record(
            self.world, env_ids, envs, self._task_ids[envs].tolist(), self._length[envs].tolist(),
            [slot_names(self._tables[e], d.conv_per_room, d.instances) for e in envs],
        )
        self._episode[envs] += 1
        self._begin(envs, env_ids)

    # ----------------------------------------------------------------------------------------
    # Checkpoints

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: device state, counters, tasks, episode log."""
        games, index = [], {}
        for tables in self._tables + [t for t, _ in self._pending.values()]:
            if id(tables) not in index:
                index[id(tables)] = len(games)
                games.append(tables.game.model_dump(mode="json"))
        return {
            "version": STATE_VERSION,
            "num_envs": self.num_envs,
            "seed": self.seed,
            "first_env": self.first_env,
            "conv_per_room": self.world.dims.conv_per_room,
            "world": {k: v.detach().cpu().clone() for k, v in self.world.tensors().items()},
            "buffers": {name: tensor.cpu().clone() for name, tensor in self._buffers().items()},
            "games": games,
            "env_game": [index[id(t)] for t in self._tables],
            "task_ids": self._task_ids.tolist(),
            "pending": {env: (index[id(t)], task) for env, (t, task) in self._pending.items()},
            "episode": self._episode.tolist(), "step": self._step.tolist(),
            "length": self._length.tolist(), "flags_set": self._flags_set, "started": self._started,
            "priority_row": self.priorities.row,
            "episode_log": self.log.state_dict(),
        }

    def _buffers(self) -> dict[str, torch.Tensor]:
        return {"obs": self._obs_store, "final_obs": self._final_store, "rewards": self.rewards,
                "terminals": self.terminals, "truncations": self.truncations}

    def load_state_dict(self, state: dict) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"engine state version {state.get('version')} is not {STATE_VERSION}")
        first_env = state.get("first_env", 0)
        if (state["num_envs"], state["seed"], first_env) != (self.num_envs, self.seed, self.first_env):
            raise ValueError(f"engine state is for {state['num_envs']} envs from env {first_env} "
                             f"seeded {state['seed']}; this engine has {self.num_envs} envs from env "
                             f"{self.first_env} seeded {self.seed}")
        tables = [compile_game(GameConfig.model_validate(g)) for g in state["games"]]
        if state["conv_per_room"] > self.world.dims.conv_per_room:
            self._grow_converters(state["conv_per_room"])
        self.world.load(state["world"])
        self.converters.invalidate()
        self.observer.refresh_static(self.world)  # the agents' group feature, kept aside
        for name, tensor in self._buffers().items():
            tensor.copy_(state["buffers"][name])
        self._tables = [tables[i] for i in state["env_game"]]
        self._task_ids = np.array(state["task_ids"], dtype=np.int64)
        self._pending = {int(e): (tables[i], task) for e, (i, task) in state["pending"].items()}
        self._episode = np.array(state["episode"], dtype=np.int64)
        self._step = np.array(state["step"], dtype=np.int64)
        self._length = np.array(state["length"], dtype=np.int64)
        self._flags_set, self._started = state["flags_set"], state["started"]
        self.priorities.row = state["priority_row"]
        self.log.load_state_dict(state["episode_log"], self.device)
        self._refresh_flags()


def _choose_native(native: bool | None, device: torch.device, compile: bool, host_skips: bool | None
                   ) -> tuple[bool, str | None]:
    """Whether the engine steps natively (see __init__'s `native`), and if not by default, why."""
    if native is None:
        if device.type != "cpu" or compile or host_skips is not None:
            return False, None
        problem = available()
        if problem:
            _warn_once(f"the native engine step is unavailable, so steps run as tensor operations "
                       f"(slower on a CPU): {problem}")
        return problem is None, problem
    if native:
        if device.type != "cpu":
            raise NativeUnavailable(f"the native step runs on a CPU, not on {device}: set "
                                    f"system.native_step=off (or auto)")
        if compile or host_skips is not None:
            raise ValueError("native=True is a step of its own: not with compile or host_skips")
        problem = available()
        if problem:
            raise NativeUnavailable(problem)
    return bool(native), None


@functools.cache
def _warn_once(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=4)  # at the engine's caller


def _converter_names(game: GameConfig) -> list[str]:
    return [name for name, obj in game.objects.items() if obj.kind == "converter"]
