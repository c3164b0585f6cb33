"""The engine's step in C++ (native.py): chosen by default on a CPU, built once and cached,
refused or fallen back from with a clear message, the same game through tasks, reallocations
and a loaded state.

That it is the same game is also held elsewhere: the scenarios run on it (conftest.py's
`native` engine), the equivalence tests compare it with the reference engine, and
test_engine_batched.py compares it tensor for tensor with the tensor steps."""

from __future__ import annotations

import stat
import warnings
from pathlib import Path

import pytest
import torch
from test_engine_equivalence import dense_arena, grown_task, play_alongside

from heartgrid.config.run import SystemConfig
from heartgrid.engine import batched, native
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.native import NativeUnavailable
from heartgrid.tools.cli import main


@pytest.fixture
def fresh_build(tmp_path, monkeypatch):
    """A cache of our own, and no library loaded yet; the process's library again afterwards."""
    monkeypatch.setenv("HEARTGRID_CACHE_DIR", str(tmp_path / "cache"))
    native.load.cache_clear()
    batched._warn_once.cache_clear()
    yield tmp_path
    native.load.cache_clear()


def compiler_script(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_cpu_engine_steps_natively_unless_another_step_is_chosen():
    game = dense_arena(combat=False)
    assert BatchedEngine(game, num_envs=2).step_kind == "native"
    assert BatchedEngine(game, num_envs=2, native=False).step_kind == "tensor"
    assert BatchedEngine(game, num_envs=2, host_skips=False).step_kind == "tensor"  # the masked path
    assert BatchedEngine(game, num_envs=2, compile=True).step_kind == "compiled"
    with pytest.raises(ValueError, match="not with compile or host_skips"):
        BatchedEngine(game, num_envs=2, native=True, compile=True)
    with pytest.raises(NativeUnavailable, match="runs on a CPU, not on cuda"):
        BatchedEngine(game, num_envs=2, device="cuda", native=True)
    with pytest.raises(ValueError, match="native_step=on and system.compile=true"):
        SystemConfig(native_step="on", compile=True)


def test_the_library_is_built_once_and_then_loaded_from_the_cache(fresh_build, monkeypatch):
    calls = fresh_build / "calls.txt"
    monkeypatch.setenv("CXX", compiler_script(fresh_build / "cxx", f'echo "$@" >> {calls}\nexec c++ "$@"'))
    assert native.available() is None
    built = list((fresh_build / "cache" / "native").glob("*/step.so"))
    assert len(built) == 1 and not list(built[0].parent.glob("tmp*"))  # renamed into place
    assert sum("step.cpp" in line for line in calls.read_text().splitlines()) == 1
    native.load.cache_clear()  # another process: finds the library, only asks the version
    assert native.available() is None
    assert sum("step.cpp" in line for line in calls.read_text().splitlines()) == 1
    assert oct(built[0].stat().st_mode & 0o777) == "0o755"  # other users of the cache load it too
    engine = BatchedEngine(dense_arena(combat=False), num_envs=2)
    engine.reset()
    engine.step(torch.zeros(engine.num_slots, dtype=torch.long))
    assert engine.step_kind == "native"


def test_cxx_may_carry_words_of_its_own(fresh_build, monkeypatch):
    monkeypatch.setenv("CXX", "env c++")  # as `ccache g++` does
    assert native.available() is None


def test_without_a_compiler_the_default_falls_back_with_a_warning(fresh_build, monkeypatch):
    monkeypatch.setenv("CXX", str(fresh_build / "no-such-compiler"))
    game = dense_arena(combat=False)
    with pytest.warns(RuntimeWarning, match="steps run as tensor operations .*cannot run the C\\+\\+ compiler"):
        engine = BatchedEngine(game, num_envs=2)
    assert engine.step_kind == "tensor" and "cannot run the C++ compiler" in engine.native_problem
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per process, not per engine
        BatchedEngine(game, num_envs=2)
    with pytest.raises(NativeUnavailable, match="install one .*system.native_step=off"):
        BatchedEngine(game, num_envs=2, native=True)


def test_a_failed_build_and_an_unwritable_cache_are_named(fresh_build, monkeypatch, capsys):
    monkeypatch.setenv("CXX", compiler_script(fresh_build / "cxx", 'echo "step.cpp:1: error: boom" >&2\nexit 1'))
    assert "failed:\nstep.cpp:1: error: boom" in native.available()
    assert not list((fresh_build / "cache").rglob("*.so"))  # nothing half-written is left
    # The command line: a usage error naming the cause (exit 2), no traceback.
    assert main(["bench", "env", "small_cardinal", "--native", "on", "--gather-threads", "1"]) == 2
    assert "error: building" in capsys.readouterr().err
    monkeypatch.delenv("CXX")
    native.load.cache_clear()
    (fresh_build / "file").write_text("")
    monkeypatch.setenv("HEARTGRID_CACHE_DIR", str(fresh_build / "file"))
    assert "set HEARTGRID_CACHE_DIR to a writable directory" in native.available()


def test_float64_rewards_add_alike_on_both_steps():
    # Inventories of several weighted items (torch's vectorised sum would pair the ten terms
    # by the CPU's vector width; both steps add them in order) and group sharing.
    game = dense_arena(combat=False)
    game.agent.rewards = {"ore_red": 0.113, "battery_red": 0.371, "heart": 0.917, "laser": 0.0731,
                          "armor": 0.29, "ore_blue": 0.057, "ore_green": 0.6}
    game.agent.reward_caps = {}
    engines = [BatchedEngine(game, num_envs=2, seed=1, native=n) for n in (False, True)]
    held = torch.randint(0, 40, engines[0].world.agent_inventory.shape, dtype=torch.int16,
                         generator=torch.Generator().manual_seed(2))
    for engine in engines:
        engine.reset()
        engine.world.agent_inventory.copy_(held)
        engine.step(torch.full((engine.num_slots,), engine.action_space.index("noop_0")))
    a, b = (engine.world.agent_inventory_value for engine in engines)
    assert torch.equal(a, b) and bool((a > 0).all())
    assert torch.equal(engines[0].rewards, engines[1].rewards)


def test_a_tensor_of_another_dtype_and_a_damaged_state_are_refused():
    engine = BatchedEngine(dense_arena(combat=False), num_envs=2)
    engine.reset()
    saved = engine.state_dict()
    engine.world.agent_frozen = engine.world.agent_frozen.int()
    with pytest.raises(TypeError, match="agent_frozen must be a contiguous CPU tensor of int16_t, got torch.int32"):
        engine.native.bind(engine.world)
    damaged = BatchedEngine(dense_arena(combat=False), num_envs=2)
    saved["world"]["agent_orientation"][3] = 7
    saved["world"]["agent_cell"][0] = -5
    with pytest.raises(ValueError, match="out-of-range values in agent_cell, agent_orientation"):
        damaged.load_state_dict(saved)


def test_tasks_that_reallocate_and_a_loaded_state_keep_the_game():
    # A task with more converters per room reallocates the converter tensors (the native step
    # binds to the new ones), and one without stat rewards changes a host flag; then a state
    # saved by one engine is loaded into a new one. The tensor engine plays alongside.
    base = dense_arena(combat=True)
    tensor, natively = (BatchedEngine(base, num_envs=3, seed=2, native=n) for n in (False, True))
    gen = torch.Generator().manual_seed(0)
    for engine in (tensor, natively):
        engine.reset()
    play_alongside([tensor, natively], gen, 10)
    for engine in (tensor, natively):
        engine.set_next_task([0, 2], [grown_task(base)] * 2, [1, 1])
    play_alongside([tensor, natively], gen, 80)  # every env's first episode ends within 60 steps
    assert natively.world.dims.conv_per_room > base.map.room.objects["mine_red"] + 1
    loaded = BatchedEngine(base, num_envs=3, seed=2, native=True)
    loaded.load_state_dict(natively.state_dict())
    play_alongside([tensor, loaded], gen, 40)
