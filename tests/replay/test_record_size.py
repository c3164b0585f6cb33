"""Compactness: a 1,000-step arena episode with 24 agents taking random actions (which change
the most: every agent turns, moves, swaps, puts and gets) fits in well under 1 MB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from replay_helpers import facing_actions, recipe_game

from heartgrid.engine.batched import BatchedEngine
from heartgrid.replay.format import read_replay, write_replay
from heartgrid.replay.reader import ReplayState
from heartgrid.replay.recorder import EpisodeRecorder

MB = 1_000_000


@pytest.mark.parametrize("actions", ["uniform", "facing"])
def test_a_1000_step_arena_episode_is_under_1_mb(actions: str, tmp_path: Path):
    engine = BatchedEngine(recipe_game("arena", 1000), 2, seed=7)
    engine.reset()
    recorder = EpisodeRecorder(engine, 1, {"source": "eval", "policy": "random", "recipe": "arena"})
    recorder.begin()
    rng = np.random.default_rng(7)
    while not recorder.done:
        if actions == "uniform":
            step = torch.as_tensor(rng.integers(0, len(engine.action_names), size=engine.num_slots))
        else:  # agents facing a converter, an agent or a block mostly use it
            step = facing_actions(rng, engine)
        engine.step(step)
        recorder.record(step)
    path = write_replay(tmp_path / "arena.hgreplay", recorder.document())
    document = read_replay(path)
    assert document["num_agents"] == 24 and len(document["steps"]) == 1000
    assert path.stat().st_size < MB, f"{path.stat().st_size:,} bytes"
    # Random agents do change things: most steps hold moves and turns.
    assert sum("pos" in s and "ori" in s for s in document["steps"]) > 500
    assert any("inv" in s for s in document["steps"])
    assert len(ReplayState(document)) == 1000
