"""The engine step through torch.compile (compiled.py): switched, reported, in place.

That it is the same game is held here (through tasks that change the graph and a loaded
state) and elsewhere: the scenarios run on it (conftest.py's `compiled` engine), the
equivalence tests compare it with the reference engine, and test_engine_batched.py compares
it tensor for tensor with the eager steps through resets, with recompiles made errors.
"""

from __future__ import annotations

import re

import pytest
import torch
from test_engine_equivalence import dense_arena, grown_task, play_alongside

from heartgrid.engine.batched import BatchedEngine


def test_a_compiled_step_runs_the_masked_path():
    with pytest.raises(ValueError, match="host_skips off"):
        BatchedEngine(dense_arena(combat=False), num_envs=2, host_skips=True, compile=True)
    engine = BatchedEngine(dense_arena(combat=False), num_envs=2, compile=True)
    assert not engine.kinds.host_skips and not engine.converters.host_skips
    assert BatchedEngine(dense_arena(combat=False), num_envs=2).compiled is None


def test_compile_time_is_reported_and_a_second_engine_reuses_the_code():
    game = dense_arena(combat=False)  # at a batch size no other test compiles
    first = BatchedEngine(game, num_envs=5, seed=1, compile=True)
    assert first.compiled.note == "engine step: compiled at the first step"
    first.reset()
    first.step(torch.zeros(first.num_slots, dtype=torch.long))
    assert first.compiled.compile_seconds > 0
    assert first.compiled.source in ("cold", "from inductor's cache")
    assert first.compiled.note.startswith("engine step: compiled with torch.compile in ")
    # The same game and batch: the same graph, guarded by shapes, not by the engine's identity.
    second = BatchedEngine(game, num_envs=5, seed=5, compile=True)
    second.reset()
    with torch._dynamo.config.patch(error_on_recompile=True):
        second.step(torch.zeros(second.num_slots, dtype=torch.int32))  # dtypes are made one
    assert second.compiled.source == "already compiled in this process"


def test_tasks_that_change_the_graph_and_a_loaded_state_keep_the_game():
    # A task with more converters per room reallocates the converter tensors and one without
    # stat rewards changes a host flag: the step compiles again, and the game goes on as in
    # the tensor engine, through a state saved and loaded again.
    base = dense_arena(combat=True)
    engines = eager, compiled = [BatchedEngine(base, num_envs=3, seed=2, native=False, compile=c)
                                 for c in (False, True)]
    gen = torch.Generator().manual_seed(0)
    for engine in engines:
        engine.reset()
    play_alongside(engines, gen, 10)
    first = compiled.compiled.compiles[:]
    assert [c.call for c in first] == [1]
    for engine in engines:
        engine.set_next_task([0, 2], [grown_task(base)] * 2, [1, 1])
    assert compiled.world.dims.conv_per_room > base.map.room.objects["mine_red"] + 1
    play_alongside(engines, gen, 80)  # every env's first episode ends within 60 steps: both tasks are played
    # The new graphs were timed and kept (their step: the first after the tasks began).
    later = compiled.compiled.compiles[1:]
    assert later and all(11 <= c.call <= 90 and c.seconds > 0 for c in later)
    assert all(f"again at this process's engine step {c.call} " in str(c) for c in later)
    assert compiled.compiled.note.startswith(f"{first[0]}; {len(later)} recompile(s) since, ")
    saved = compiled.state_dict()
    play_alongside(engines, gen, 10)
    for engine in engines:
        engine.load_state_dict(saved)
    play_alongside(engines, gen, 20)


def test_the_compiled_step_writes_large_buffers_in_place():
    # The premise of compiled.py: no copy of a buffer as large as the grid (planes, agent_at,
    # conv_at: cells + trash rows). A combat game, whose attacks read `agent_at` before the
    # moves write it (the case inductor's reordering once answered with a copy).
    from torch._inductor.utils import run_and_get_code

    engine = BatchedEngine(dense_arena(combat=True), num_envs=4, seed=3, compile=True)
    engine.reset()
    actions = torch.zeros(engine.num_slots, dtype=torch.long)
    with torch._inductor.config.patch(fx_graph_cache=False):  # generate the code here
        _, codes = run_and_get_code(engine.step, actions)
    d = engine.world.dims
    grid = d.cells + d.slots
    code = "\n".join(codes)
    rows = [int(shape.split(",")[0]) for shape in re.findall(r"empty_strided_\w+\(\(([\d, ]+)\)", code)]
    loops = [int(n) for n in re.findall(r"x\d+<static_cast<int64_t>\((\d+)L\)", code)]
    assert rows and loops  # the code was seen
    assert max(rows) < grid and max(loops) < grid, (grid, max(rows), max(loops))
