"""Replays that an evaluation writes (`heartgrid eval ... --replays DIR`): where, how many, and
what their `meta` says.

    request = ReplayRequest(Path("replays"), episodes=1, meta={"source": "eval", "policy": uri})
    recorders = request.recorders(engine, task="navigation/corridors")   # envs 0..episodes-1
    ... engine.reset(); [r.begin() ...]; engine.step(a); [r.record(a) ...] ...
    request.write(recorders, "run@10", "navigation", "corridors")       # one file per recorder

The first episode of each of the first `episodes` envs is recorded (at most one per env: a
suite's simulation plays one episode per env, so that is every episode it asked for). File
names join the parts given with "__" and end in `__ep<env>.hgreplay`, characters outside
[A-Za-z0-9._+-] replaced by "-" so that names are safe in a shell and in a URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heartgrid.engine.batched import BatchedEngine
from heartgrid.replay.format import SUFFIX, write_replay
from heartgrid.replay.recorder import BULK_FLUSH_EVERY, EpisodeRecorder


def safe_name(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "-", part).strip(".") or "-"


@dataclass
class ReplayRequest:
    directory: Path
    episodes: int = 1
    """Envs 0..episodes-1 each record their first episode."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Meta shared by every replay (source, policy, recipe, epoch, agent_step, ...)."""
    written: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"replay episodes must be at least 1, got {self.episodes}")
        self.meta.setdefault("source", "eval")

    def recorders(self, engine: BatchedEngine, **meta: Any) -> list[EpisodeRecorder]:
        """A recorder for each recorded env of `engine` (call `begin()` after the reset)."""
        envs = range(min(self.episodes, engine.num_envs))
        return [EpisodeRecorder(engine, env, {**self.meta, **meta}, flush_every=BULK_FLUSH_EVERY)
                for env in envs]

    def write(self, recorders: list[EpisodeRecorder], *parts: str) -> list[Path]:
        """Write each recorder's document as `<parts joined by __>__ep<env>.hgreplay`."""
        stem = "__".join(safe_name(p) for p in parts)
        paths = []
        for recorder in recorders:
            recorder.close()
            path = self.directory / f"{stem}__ep{recorder.env}{SUFFIX}"
            paths.append(write_replay(path, recorder.document()))
        self.written.extend(paths)
        return paths
