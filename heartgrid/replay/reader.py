"""Rebuild the full state of every step of a replay from its start state and delta records.

    replay = ReplayState(read_replay(path))
    len(replay)                 # steps recorded
    replay.at(0)                # the episode's start
    replay.at(k)                # the state after step k
    replay.stats(k)             # the global numbers of step k, computed from the state

A state is `{"t", "objects": [[type, row, col]] (object id = index), "agents": {"group",
"color", "orientation", "inventory", "frozen", "reward"}, "converters": {"inventory",
"state"}}`, lists as in the file; `agents.reward` is each agent's reward so far, summed in
float32 as the engine sums it. States are rebuilt from a full copy kept every KEYFRAME_EVERY
steps, so any step is reached by applying at most that many records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from heartgrid.replay.format import ReplayError

KEYFRAME_EVERY = 64
HEART = 6  # index of "heart" in heartgrid.config.items.ITEMS


class _State:
    """The mutable state of one step, as arrays."""

    def __init__(self, pos, types, ori, inv, frz, col, reward, cinv, cst):
        self.pos, self.types, self.ori, self.inv, self.frz = pos, types, ori, inv, frz
        self.col, self.reward, self.cinv, self.cst = col, reward, cinv, cst

    def copy(self) -> _State:
        return _State(*(getattr(self, k).copy() for k in
                        ("pos", "types", "ori", "inv", "frz", "col", "reward", "cinv", "cst")))


class ReplayState:
    """Random access to every step's state of a replay document (validated by read_replay)."""

    def __init__(self, document: dict[str, Any], *, source: str | Path | None = None) -> None:
        self.document = document
        self.source = str(source) if source is not None else "replay"
        self.steps: list[dict[str, Any]] = document["steps"]
        self.num_agents = int(document["num_agents"])
        agents, conv = document["agents"], document["converters"]
        objects = np.array(document["objects"], dtype=np.int64).reshape(-1, 3)
        A = self.num_agents
        self.group = list(agents["group"])
        start = _State(
            pos=objects[:, 1:].copy(), types=objects[:, 0].copy(),
            ori=np.array(agents["orientation"], dtype=np.int64),
            inv=np.array(agents["inventory"], dtype=np.int64).reshape(A, -1),
            frz=np.array(agents["frozen"], dtype=np.int64),
            col=np.array(agents["color"], dtype=np.int64),
            reward=np.zeros(A, dtype=np.float32),
            cinv=np.array(conv["inventory"], dtype=np.int64).reshape(len(conv["type"]), -1),
            cst=np.array(conv["state"], dtype=np.int64),
        )
        # Full copies every KEYFRAME_EVERY steps: at(t) applies at most that many records.
        self._keyframes = [start.copy()]
        state = start
        for t in range(1, len(self.steps) + 1):
            self._apply(state, t)
            if t % KEYFRAME_EVERY == 0:
                self._keyframes.append(state.copy())

    def __len__(self) -> int:
        return len(self.steps)

    def _state(self, t: int) -> _State:
        if not 0 <= t <= len(self.steps):
            raise IndexError(f"step {t} is outside 0..{len(self.steps)} of {self.source}")
        state = self._keyframes[t // KEYFRAME_EVERY].copy()
        for k in range(t - t % KEYFRAME_EVERY + 1, t + 1):
            self._apply(state, k)
        return state

    def _apply(self, s: _State, t: int) -> None:
        """Step record t (1-based: steps[t - 1]) applied to `s` in place."""
        step = self.steps[t - 1]
        try:
            for agent, reward in step.get("r", ()):
                s.reward[agent] += np.float32(reward)
            for obj, row, col in step.get("pos", ()):
                s.pos[obj] = (row, col)
            for agent, value in step.get("ori", ()):
                s.ori[agent] = value
            for agent, item, count in step.get("inv", ()):
                s.inv[agent, item] = count
            for agent, value in step.get("frz", ()):
                s.frz[agent] = value
            for agent, value in step.get("col", ()):
                s.col[agent] = value
            for conv, item, count in step.get("cinv", ()):
                s.cinv[conv, item] = count
            for conv, value in step.get("cst", ()):
                s.cst[conv] = value
        except (IndexError, TypeError, ValueError) as e:
            raise ReplayError(f"{self.source}: step {t} holds a malformed record ({e})") from None

    def at(self, t: int) -> dict[str, Any]:
        """The state at step t: 0 is the start, k the state after step k."""
        s = self._state(t)
        objects = np.concatenate([s.types[:, None], s.pos], axis=1)
        return {
            "t": t,
            "objects": objects.tolist(),
            "agents": {
                "group": list(self.group),
                "color": s.col.tolist(),
                "orientation": s.ori.tolist(),
                "inventory": s.inv.tolist(),
                "frozen": s.frz.tolist(),
                "reward": [float(r) for r in s.reward],
            },
            "converters": {"inventory": s.cinv.tolist(), "state": s.cst.tolist()},
        }

    def stats(self, t: int) -> dict[str, Any]:
        """The global numbers of step t (docs/replays.md): its reward (all agents), the reward
        so far, hearts held, frozen agents, and the share of acting agents whose action
        succeeded (None at t = 0 or when nobody acted)."""
        s = self._state(t)
        step = self.steps[t - 1] if t > 0 else None
        acting = [ok for ok in step["ok"] if ok >= 0] if step is not None else []
        return {
            "t": t,
            "reward": float(sum(np.float32(r) for _, r in step.get("r", ()))) if step else 0.0,
            "reward_total": float(s.reward.sum(dtype=np.float64)),
            "hearts": int(s.inv[:, HEART].sum()),
            "frozen": int((s.frz > 0).sum()),
            "success": sum(acting) / len(acting) if acting else None,
        }
