"""The engine step through torch.compile (compiled.py): how it is switched and reported.

That it is the same game is held elsewhere: the scenarios run on it (conftest.py's
`compiled` engine), the equivalence tests compare it with the reference engine, and
test_engine_batched.py compares it tensor for tensor with the eager steps through resets,
with recompiles made errors.
"""

from __future__ import annotations

import pytest
import torch
from test_engine_equivalence import dense_arena

from heartgrid.engine.batched import BatchedEngine


def test_a_compiled_step_runs_the_masked_path():
    with pytest.raises(ValueError, match="host_skips off"):
        BatchedEngine(dense_arena(combat=False), num_envs=2, host_skips=True, compile=True)
    engine = BatchedEngine(dense_arena(combat=False), num_envs=2, compile=True)
    assert not engine.kinds.host_skips and not engine.converters.host_skips
    assert BatchedEngine(dense_arena(combat=False), num_envs=2).compiled is None


def test_compile_time_is_reported_and_a_second_engine_reuses_the_code():
    game = dense_arena(combat=False)
    first = BatchedEngine(game, num_envs=2, seed=1, compile=True)
    assert first.compiled.note == "engine step: compiled at the first step"
    first.reset()
    first.step(torch.zeros(first.num_slots, dtype=torch.long))
    assert first.compiled.compile_seconds > 0
    assert first.compiled.source in ("cold", "from inductor's cache")
    assert first.compiled.note.startswith("engine step: compiled with torch.compile in ")
    # The same game and batch: the same graph, guarded by shapes, not by the engine's identity.
    second = BatchedEngine(game, num_envs=2, seed=5, compile=True)
    second.reset()
    with torch._dynamo.config.patch(error_on_recompile=True):
        second.step(torch.zeros(second.num_slots, dtype=torch.int32))  # dtypes are made one
    assert second.compiled.source == "already compiled in this process"
