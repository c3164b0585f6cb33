"""Record one env of a BatchedEngine, step by step, as a replay document (format.py).

    recorder = EpisodeRecorder(engine, env=3, meta={"source": "eval", "policy": uri})
    engine.reset(); recorder.begin()
    while not recorder.done:
        actions = ...
        engine.step(actions); recorder.record(actions)
    write_replay(path, recorder.document())

The other envs of the batch are not touched and not waited for. Each `record` copies the
recorded env's slices of the engine's state (agent cells, orientations, inventories, frozen
counters, colors, rewards, action counters, converter inventories and timers: a handful of small
tensors) into buffers on the engine's device; every `flush_every` steps, and when the episode
ends, the buffers come to the host in one copy and the delta records are built there. On a GPU
the step therefore never waits for the device (default: one copy per 256 steps); on a CPU the
copy is free, so by default records are built at once (`flush_every=1`) and `record` returns a
complete record (what a live view needs). With `flush_every > 1` the dict `record` returns is
filled in place at the next flush (`flush()` forces one; `document()` always flushes); writers
that only need the whole episode pass BULK_FLUSH_EVERY, which is cheaper on a CPU too.

The last step of an episode is read in the engine's end hook (`BatchedEngine.end_hooks`),
which runs before the env resets in place; so is whether it ended terminal or truncated.

What is derived rather than read:
- whether an action succeeded: from the change of the agent's `action.<type>.success` /
  `.failed` counters over the step (the engine counts exactly one of them per acting agent);
  an agent whose `status.frozen.ticks` grew was frozen and did not act (-1);
- blocks that moved: a swap is the only way an agent enters a block's cell, and the block
  takes the agent's old cell (RULES.md), so an agent found on a block's cell swapped with it;
- converter state: the engine's one countdown `conv_timer` (converters.py): 0 ready,
  above the cooldown converting (1), else cooling down (2).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch

from heartgrid import __version__
from heartgrid.config.items import ITEMS, TYPE_IDS
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.tasks import slot_names
from heartgrid.replay.format import FORMAT, SOURCES, VERSION

BULK_FLUSH_EVERY = 256
"""Steps kept in the buffers between copies to the host: the default on a GPU, and what the
writers that need no record before the episode ends (eval, training, render) use anywhere
(on a CPU, building the records of 256 steps at once costs a quarter of building them one
by one)."""


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact_float(value: float) -> float:
    """A float32 value as the shortest decimal that reads back to the same float32 (0.1, not
    0.10000000149011612): a third of the bytes, and readers that sum in float32 get the
    engine's numbers exactly."""
    return float(str(np.float32(value)))


class EpisodeRecorder:
    """Records env `env` of `engine` from `begin()` until its episode ends (`done`)."""

    def __init__(self, engine: BatchedEngine, env: int, meta: dict[str, Any], *,
                 flush_every: int | None = None) -> None:
        if not 0 <= env < engine.num_envs:
            raise ValueError(f"env {env} is out of range 0..{engine.num_envs - 1}")
        if meta.get("source") not in SOURCES:
            raise ValueError(f"meta['source'] must be one of {SOURCES}, got {meta.get('source')!r}")
        if flush_every is not None and flush_every < 1:
            raise ValueError(f"flush_every must be at least 1, got {flush_every}")
        self.engine, self.env, self.meta = engine, env, dict(meta)
        self.flush_every = flush_every or (1 if engine.device.type == "cpu" else BULK_FLUSH_EVERY)
        self.done = False
        """The env's episode ended at the last recorded step (or nothing was begun yet: False)."""
        self._active = False
        self._header: dict[str, Any] = {}
        self._steps: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []  # records not yet filled (flush_every > 1)
        self._end = "cut"

        A = engine.num_agents
        self._slots = slice(env * A, (env + 1) * A)
        layout = engine.stat_layout
        types = engine.action_space.type_names
        self._success_cols = [layout.column[f"action.{t}.success"] for t in types]
        self._frozen_col = layout.column["status.frozen.ticks"]
        # Actions sent as (type, arg) pairs are recorded as flat ids (-1 where invalid).
        space = engine.action_space
        table = torch.full((len(types), max(space.type_num_args)), -1, dtype=torch.int64)
        for flat, (t, a) in enumerate(space.flat):
            table[t, a] = flat
        self._flat_of = table.to(engine.device)
        self._num_args = torch.tensor(space.type_num_args, device=engine.device)

    # ----------------------------------------------------------------------------------------
    # The episode's start

    @torch.inference_mode()
    def begin(self) -> dict[str, Any]:
        """Take the env's current state as the start of the recorded episode: call it right
        after `engine.reset()`, or after the step that ended the env's previous episode (the
        env has then reset in place). Starts a new document; returns it (without steps)."""
        engine, env = self.engine, self.env
        if not engine.started:
            raise RuntimeError("call engine.reset() before EpisodeRecorder.begin()")
        w, d = engine.world, engine.world.dims
        tables = engine.env_tables(env)  # the env's current task
        game = tables.game
        F = d.num_features
        type_ch, swap_ch = engine.features["type_id"].id, engine.features["swappable"].id
        H, W, A = d.height, d.width, d.num_agents
        self._geometry = (env * d.cells_per_env, d.padded_width, d.pad_r, d.pad_c)

        grid = w.planes[: d.cells].view(d.num_envs, d.padded_height, d.padded_width, F)[env]
        grid = grid[d.pad_r: d.pad_r + H, d.pad_c: d.pad_c + W].cpu().numpy()
        codes, swappable = grid[..., type_ch].astype(np.int64), grid[..., swap_ch]

        # Active converters: room slot m of instance i is global converter env*cpe + i*cpr + m.
        cpe = d.conv_per_env
        active = w.conv_active[env * cpe: (env + 1) * cpe].cpu().numpy()
        self._conv_local = np.flatnonzero(active)
        self._conv_layout = (d.conv_per_room, cpe)
        self._conv_ids = self._global_converters()
        ids = self._conv_ids
        names = slot_names(tables, d.conv_per_room, d.instances)
        conv_types = [names[i] for i in self._conv_local]
        conv_cells = w.conv_cell.index_select(0, ids).cpu().numpy()
        conv_in = w.conv_input.index_select(0, ids).cpu().numpy()
        conv_out = w.conv_output.index_select(0, ids).cpu().numpy()
        self._finish_at = w.conv_finish_at.index_select(0, ids).cpu().numpy()

        state = self._read_now()
        self._last = state
        agent_cells = state["cell"]

        objects = [[TYPE_IDS["agent"], *self._row_col(c)] for c in agent_cells]
        objects += [[int(codes[r, c]) - 1, r, c] for r, c in map(self._row_col, conv_cells)]
        taken = {self._row_col(c) for c in [*agent_cells, *conv_cells]}
        blocks, walls = [], []
        for r, c in zip(*np.nonzero(codes)):
            r, c = int(r), int(c)
            if (r, c) not in taken:
                (blocks if swappable[r, c] else walls).append([int(codes[r, c]) - 1, r, c])
        # Blocks by their padded cell: an agent entering one swapped with it.
        first_block = len(objects)
        self._blocks = {self._cell_of(r, c): first_block + i for i, (_, r, c) in enumerate(blocks)}
        objects += blocks + walls

        group = int(w.param_group_id[env].item())
        self._header = {
            "format": FORMAT,
            "version": VERSION,
            "meta": self._meta(),
            "game": game.model_dump(mode="json"),
            "height": H, "width": W, "num_agents": A,
            "items": list(ITEMS),
            "object_types": object_types(game),
            "actions": list(engine.action_names),
            "features": engine.features.names,
            "groups": {str(g.id): name for name, g in game.groups.items()},
            "objects": objects,
            "agents": {
                "group": [group] * A,
                "color": state["col"].tolist(),
                "orientation": state["ori"].tolist(),
                "inventory": state["inv"].tolist(),
                "frozen": state["frz"].tolist(),
            },
            "converters": {
                "type": conv_types,
                "input": [_recipe(row) for row in conv_in],
                "output": [_recipe(row) for row in conv_out],
                "inventory": state["cinv"].tolist(),
                "state": self._conv_state(state["timer"]).tolist(),
            },
        }
        self._terminal = tables.terminal
        self._steps, self._pending = [], []
        self._end, self.done, self._active = "cut", False, True
        self._captured = False
        self._allocate()
        if self._on_end not in engine.end_hooks:
            engine.end_hooks.append(self._on_end)
        return {**self._header, "steps": [], "end": "cut"}

    def _meta(self) -> dict[str, Any]:
        engine, env = self.engine, self.env
        meta = {"heartgrid_version": __version__, "created": utc_now(), "source": None,
                "recipe": None, "policy": None, "seed": engine.seed,
                "env": engine.first_env + env, "episode": engine.env_episode(env),
                "task": None, "epoch": None, "agent_step": None,
                # Optional (docs/replays.md): the episode's step at begin(), 0 from its start.
                "start_step": engine.env_step(env)}
        meta.update(self.meta)
        return meta

    def _global_converters(self) -> torch.Tensor:
        """Device ids of the recorded converters in the engine's current converter layout
        (a task with more converters per room renumbers them: World.grow_converters)."""
        d = self.engine.world.dims
        cpr_then, _ = self._conv_layout
        instance, slot = np.divmod(self._conv_local, cpr_then)
        ids = self.env * d.conv_per_env + instance * d.conv_per_room + slot
        self._conv_layout = (d.conv_per_room, d.conv_per_env)
        self._conv_local = instance * d.conv_per_room + slot
        return torch.as_tensor(ids, dtype=torch.int64).to(self.engine.device)

    def _row_col(self, cell: int) -> tuple[int, int]:
        base, wp, pad_r, pad_c = self._geometry
        row, col = divmod(int(cell) - base, wp)
        return row - pad_r, col - pad_c

    def _cell_of(self, row: int, col: int) -> int:
        base, wp, pad_r, pad_c = self._geometry
        return base + (row + pad_r) * wp + col + pad_c

    def _conv_state(self, timer: np.ndarray) -> np.ndarray:
        """0 ready, 1 converting (timer above the cooldown), 2 cooling down."""
        return np.where(timer == 0, 0, np.where(timer >= self._finish_at, 1, 2))

    # ----------------------------------------------------------------------------------------
    # Per step: device-side capture

    def _sources(self) -> dict[str, torch.Tensor]:
        """The recorded env's slices of the engine's state, as they are now (views, no copy)."""
        w, s = self.engine.world, self._slots
        if self._conv_layout[0] != w.dims.conv_per_room:
            self._conv_ids = self._global_converters()
        return {
            "cell": w.agent_cell[s], "ori": w.agent_orientation[s], "inv": w.agent_inventory[s],
            "frz": w.agent_frozen[s], "col": w.agent_color[s], "rew": self.engine.rewards[s],
            "counts": w.agent_counts[s],
            "cinv": w.conv_inventory.index_select(0, self._conv_ids),
            "timer": w.conv_timer.index_select(0, self._conv_ids),
        }

    def _read_now(self) -> dict[str, np.ndarray]:
        return {k: v.cpu().numpy().copy() for k, v in self._sources().items()}

    def _allocate(self) -> None:
        K = self.flush_every
        self._buffers = {k: torch.zeros((K, *v.shape), dtype=v.dtype, device=self.engine.device)
                         for k, v in self._sources().items()}
        self._buffers["act"] = torch.zeros((K, self.engine.num_agents), dtype=torch.int64,
                                           device=self.engine.device)
        self._k = 0  # the buffer row of the next step

    def _capture(self) -> None:
        for name, source in self._sources().items():
            self._buffers[name][self._k].copy_(source)

    def _on_end(self, envs: list[int]) -> None:
        """Engine end hook: the recorded env's last step, read before the env resets."""
        if self._active and not self.done and not self._captured and self.env in envs:
            with torch.inference_mode():
                self._capture()
            self._captured = True
            self._end = "terminal" if self._terminal else "truncated"

    @torch.inference_mode()
    def record(self, actions: torch.Tensor) -> dict[str, Any]:
        """Record the step just taken: call right after `engine.step(actions)` with the same
        actions ([slots] flat ids, or [slots, 2] (type, arg) pairs). Returns this step's record
        (the dict in the document; filled at the next flush when `flush_every > 1`)."""
        if not self._active:
            raise RuntimeError("EpisodeRecorder.record() before begin()")
        if self.done:
            raise RuntimeError(f"env {self.env}'s recorded episode has ended; call begin() to "
                               "record the next one")
        if not self._captured:
            self._capture()
        self._buffers["act"][self._k].copy_(self._flat_actions(actions))
        record: dict[str, Any] = {}
        self._steps.append(record)
        self._pending.append(record)
        self._k += 1
        self._captured = False
        if self._end != "cut":
            self.done = True
            self.engine.end_hooks.remove(self._on_end)
        if self._k == self.flush_every or self.done:
            self.flush()
        return record

    def _flat_actions(self, actions: Any) -> torch.Tensor:
        actions = torch.as_tensor(actions, device=self.engine.device)
        mine = actions[self._slots].long()
        if mine.dim() == 1:
            return mine
        types, args = mine[:, 0], mine[:, 1]
        valid = (types >= 0) & (types < len(self._num_args))
        types = types.clamp(0, len(self._num_args) - 1)
        valid &= (args >= 0) & (args < self._num_args[types])
        return torch.where(valid, self._flat_of[types, args.clamp(0, self._flat_of.shape[1] - 1)], -1)

    # ----------------------------------------------------------------------------------------
    # On the host: delta records

    @torch.inference_mode()
    def flush(self) -> None:
        """Bring the buffered steps to the host (one copy) and fill their records. The changes
        of all buffered steps are found at once (array comparisons over [steps, ...]); only
        building the lists is per step."""
        if not self._pending:
            return
        n, last = self._k, self._last
        host = {k: v[:n].cpu().numpy() for k, v in self._buffers.items()}
        # Each state with the one before it: seq[k][t] is before step t, seq[k][t + 1] after.
        seq = {k: np.concatenate([last[k][None], host[k]]) for k in last}
        fields: list[tuple[str, list[list]]] = []

        counts = np.diff(seq["counts"], axis=0)
        success = counts[:, :, self._success_cols].sum(axis=2) > 0
        frozen = counts[:, :, self._frozen_col] > 0
        actions, ok = host["act"].tolist(), np.where(frozen, -1, success.astype(np.int64)).tolist()
        steps, agents = np.nonzero(host["rew"])
        rewards = [[int(a), compact_float(r)] for a, r in zip(agents, host["rew"][steps, agents])]
        fields.append(("r", _by_step(steps, rewards, n)))
        fields.append(("pos", self._moves(seq["cell"])))
        for key in ("ori", "inv", "frz", "col", "cinv"):
            fields.append((key, _changes(seq[key], n)))
        fields.append(("cst", _changes(self._conv_state(seq["timer"]), n)))

        for t, record in enumerate(self._pending):
            record["a"], record["ok"] = actions[t], ok[t]
            for key, per_step in fields:
                if per_step[t]:
                    record[key] = per_step[t]
        # A copy: on a CPU `.cpu()` returns the buffer itself, which the next steps overwrite.
        self._last = {k: v[-1].copy() for k, v in host.items() if k in last}
        self._pending, self._k = [], 0

    def _moves(self, cells: np.ndarray) -> list[list[list[int]]]:
        """Per step, [object, row, col] of the agents that moved and of the blocks they swapped
        with (a block takes the old cell of the agent that entered its cell)."""
        per_step: list[list[list[int]]] = [[] for _ in range(len(cells) - 1)]
        steps, agents = np.nonzero(cells[1:] != cells[:-1])
        for t, a in zip(steps.tolist(), agents.tolist()):
            old, new = int(cells[t, a]), int(cells[t + 1, a])
            per_step[t].append([a, *self._row_col(new)])
            block = self._blocks.pop(new, None)
            if block is not None:
                self._blocks[old] = block
                per_step[t].append([block, *self._row_col(old)])
        for moves in per_step:
            moves.sort()
        return per_step

    # ----------------------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The replay so far: header, every recorded step, and `end` ("cut" until done)."""
        if not self._active:
            raise RuntimeError("EpisodeRecorder.document() before begin()")
        self.flush()
        return {**self._header, "steps": list(self._steps), "end": self._end}

    def close(self) -> None:
        """Stop recording (the document keeps what was recorded; `end` stays "cut" unless the
        episode ended) and detach from the engine."""
        if self._on_end in self.engine.end_hooks:
            self.engine.end_hooks.remove(self._on_end)
        if self._active:
            self.flush()


def _changes(seq: np.ndarray, n: int) -> list[list[list[int]]]:
    """Per step t, [index..., new value] of every entry of seq[t + 1] that differs from seq[t]."""
    where = np.nonzero(seq[1:] != seq[:-1])
    values = seq[1:][where]
    entries = np.stack([*where[1:], values], axis=1).tolist() if values.size else []
    return _by_step(where[0], entries, n)


def _by_step(steps: np.ndarray, entries: list, n: int) -> list[list]:
    """Entries (in step order) split into one list per step."""
    if n == 1:
        return [entries]
    bounds = np.searchsorted(steps, np.arange(n + 1)).tolist()
    return [entries[bounds[t]:bounds[t + 1]] for t in range(n)]


def _recipe(row: np.ndarray) -> dict[str, int]:
    return {item: int(n) for item, n in zip(ITEMS, row) if n}


def object_types(game: Any) -> list[str]:
    """Type names indexed by type id: TYPE_IDS, extended by any other type id the game's
    objects use (named after the object; ids in between that nothing uses are "")."""
    names = {i: name for name, i in TYPE_IDS.items()}
    for name, obj in game.objects.items():
        names.setdefault(obj.type_id, name)
    return [names.get(i, "") for i in range(max(names) + 1)]
