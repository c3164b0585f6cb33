"""The batched engine's own contract: buffers, determinism, stats, tasks, checkpoints, devices."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from heartgrid.config.game import GameConfig, GroupConfig
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.reference import ReferenceEnv
from heartgrid.engine.rng import env_seed
from heartgrid.recipes import get_recipe
from test_engine_equivalence import dense_arena

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def small_game(max_steps: int = 30) -> GameConfig:
    game = get_recipe("small_easy_shaped").fn("cpu").game
    game.max_steps = max_steps
    return game


def arena_game(max_steps: int = 25) -> GameConfig:
    game = get_recipe("arena_basic_easy_shaped").fn("cpu").game
    game.max_steps = max_steps
    return game


def rollout(engine: BatchedEngine, steps: int, seed: int = 0) -> dict[str, list]:
    """Random actions; everything the trainer reads, copied to the CPU, per step."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, list] = {"obs": [], "rewards": [], "dones": [], "final_obs": [], "episodes": []}
    for _ in range(steps):
        actions = torch.randint(0, len(engine.action_names), (engine.num_slots,), generator=gen)
        engine.step(actions.to(engine.device))
        done = (engine.terminals | engine.truncations).cpu()
        out["obs"].append(engine.obs.cpu().clone())
        out["rewards"].append(engine.rewards.cpu().clone())
        out["dones"].append(done)
        out["final_obs"].append(engine.final_obs.cpu()[done].clone())
        batch = engine.drain_episodes()
        out["episodes"].append((batch.env_ids.tolist(), batch.task_ids.tolist(),
                                batch.rewards.tolist(),
                                {k: v.tolist() for k, v in batch.agent_stats.items()}))
    return out


def assert_same(a: dict[str, list], b: dict[str, list]) -> None:
    for key in a:
        for t, (x, y) in enumerate(zip(a[key], b[key])):
            if isinstance(x, torch.Tensor):
                assert torch.equal(x, y), f"{key} differs at step {t}"
            else:
                assert x == y, f"{key} differs at step {t}"


@pytest.mark.parametrize("device", DEVICES)
def test_buffers_shapes_dtypes_and_in_place_updates(device):
    game = small_game()
    engine = BatchedEngine(game, num_envs=3, device=device, seed=0)
    S, F = 3 * game.num_agents, len(engine.features)
    assert engine.num_slots == S and engine.obs_shape == (F, 7, 7)
    engine.reset()
    buffers = {"obs": (engine.obs, torch.uint8, (S, F, 7, 7)),
               "final_obs": (engine.final_obs, torch.uint8, (S, F, 7, 7)),
               "rewards": (engine.rewards, torch.float32, (S,)),
               "terminals": (engine.terminals, torch.bool, (S,)),
               "truncations": (engine.truncations, torch.bool, (S,))}
    pointers = {}
    for name, (tensor, dtype, shape) in buffers.items():
        assert tensor.dtype == dtype and tuple(tensor.shape) == shape, name
        assert tensor.device.type == device
        pointers[name] = tensor.data_ptr()
    # Channels-last memory (observe.py): [S, F, H, W] view of [S, H, W, F] storage.
    assert engine.obs.is_contiguous(memory_format=torch.channels_last)
    rollout(engine, 5)
    for name, (tensor, _, _) in buffers.items():
        assert getattr(engine, name).data_ptr() == pointers[name], f"{name} was reallocated"


def test_same_seed_same_rollout_bit_for_bit_and_other_seed_differs():
    runs = [rollout(_started(arena_game(), 2, seed), 60) for seed in (4, 4, 5)]
    assert_same(runs[0], runs[1])
    assert not all(torch.equal(x, y) for x, y in zip(runs[0]["obs"], runs[2]["obs"]))


def _started(game: GameConfig, num_envs: int, seed: int, device: str = "cpu") -> BatchedEngine:
    engine = BatchedEngine(game, num_envs=num_envs, device=device, seed=seed)
    engine.reset()
    return engine


def test_thread_counts_do_not_change_a_rollout():
    # The step's operations and the observation gather may each run on several CPU threads.
    runs = []
    for threads, gather_threads in ((1, 1), (1, 2), (2, 2)):
        engine = BatchedEngine(arena_game(), num_envs=2, seed=4, threads=threads,
                               gather_threads=gather_threads)
        engine.reset()
        runs.append(rollout(engine, 40))
    assert_same(runs[0], runs[1])
    assert_same(runs[0], runs[2])


def test_host_skips_masked_compiled_and_native_steps_are_one_game():
    # With host skips the effects touch only the winners' rows and the converters that change;
    # without, every slot writes and the losers' writes land in trash rows; the compiled step
    # runs the masked path through torch.compile; the native step is C++ loops over the same
    # tensors. The games must be the same, tensor for
    # tensor, at every step: through episode resets (short episodes), which must not recompile
    # the step, and with agents using converters often (crowded rooms, converters stocked from
    # the start, a third of the actions put_items / get_items).
    game = dense_arena(combat=True)
    engines = [BatchedEngine(game, num_envs=3, seed=2, host_skips=skips) for skips in (True, False)]
    engines.append(BatchedEngine(game, num_envs=3, seed=2, compile=True))
    engines.append(BatchedEngine(game, num_envs=3, seed=2, native=True))
    names = engines[0].action_names
    using = torch.tensor([i for i, name in enumerate(names) if name.startswith(("put_items", "get_items"))])
    gen = torch.Generator().manual_seed(3)
    for engine in engines:
        engine.reset()
    used = torch.zeros(2)
    put, get = (engines[0].stat_layout.kind(kind) for kind in ("put", "get"))
    for t in range(150):
        actions = torch.randint(0, len(names), (engines[0].num_slots,), generator=gen)
        converter = torch.rand(len(actions), generator=gen) < 1 / 3
        actions[converter] = using[torch.randint(0, len(using), (int(converter.sum()),), generator=gen)]
        with torch._dynamo.config.patch(error_on_recompile=t > 0):
            for engine in engines:
                engine.step(actions)
        skipping, *others = (engine.world.game_state() for engine in engines)
        for other in others:
            for name in skipping:
                assert torch.equal(skipping[name], other[name]), (t, name)
        for other in engines[1:]:
            assert torch.equal(engines[0].obs, other.obs), t
            assert torch.equal(engines[0].rewards, other.rewards), t
            assert torch.equal(engines[0].truncations, other.truncations), t
        stats = engines[0].world.agent_item_stats
        used = torch.maximum(used, torch.tensor([float(stats[put].sum()), float(stats[get].sum())]))
    d = engines[0].world.dims
    assert len(skipping["planes"]) == d.cells and len(skipping["agent_inventory"]) == d.slots
    assert len(skipping["conv_input"]) == d.converters
    assert len(engines[0].drain_episodes()) >= 6  # episodes ended and began again
    assert (used > 0).all(), used  # agents put items into converters and took items out


@pytest.mark.parametrize("host_skips", [True, False])
def test_resetting_twice_is_resetting_once(host_skips: bool):
    """As SB3 does with a vec env that reset itself: the converters of every env must show in
    the grid after the second reset too (with host skips, only what changed is redrawn)."""
    game = dense_arena(combat=True)
    once, twice = (BatchedEngine(game, num_envs=2, seed=4, host_skips=host_skips) for _ in range(2))
    once.reset()
    twice.reset()
    twice.set_next_task([1], [game], [0])
    twice.reset()
    gen = torch.Generator().manual_seed(5)
    for t in range(30):
        assert torch.equal(once.obs, twice.obs), t
        actions = torch.randint(0, len(once.action_names), (once.num_slots,), generator=gen)
        once.step(actions)
        twice.step(actions)


def test_an_envs_rollout_does_not_depend_on_the_batch_size():
    game = small_game()
    alone = _started(game, 1, seed=9)
    batch = _started(game, 4, seed=9)
    actions = torch.randint(0, len(alone.action_names), (50, 4 * game.num_agents),
                            generator=torch.Generator().manual_seed(1))
    A = game.num_agents
    for step in actions:
        alone.step(step[:A])
        batch.step(step)
        assert torch.equal(alone.obs, batch.obs[:A])
        assert torch.equal(alone.rewards, batch.rewards[:A])


def test_episode_stats_use_the_reference_names():
    engine = _started(small_game(max_steps=10), 2, seed=0)
    rollout(engine, 10)  # desync ends every first episode within max_steps
    engine2 = _started(small_game(max_steps=10), 2, seed=0)
    for _ in range(10):
        engine2.step(torch.zeros(engine2.num_slots, dtype=torch.long))
    batch = engine2.drain_episodes()
    assert sorted(batch.env_ids.tolist()) == [0, 1]
    for name in ("heart.get", "heart.gained", "ore_red.gained", "battery_red.gained", "battery_red.put",
                 "ore_red.stolen", "action.move.success", "action.move.failed", "action.noop.success",
                 "action.invalid_type", "action.invalid_arg", "action.attack.blocked",
                 "status.frozen.ticks"):
        assert name in batch.agent_stats, name
        assert batch.agent_stats[name].shape == (2,) and batch.agent_stats[name].dtype == torch.float32
    assert set(batch.game_stats) >= {"altar.conversions", "altar.blocked", "mine_red.conversions"}
    # Action 0 is noop_0: every step of every agent is a successful noop.
    np.testing.assert_array_equal(batch.agent_stats["action.noop.success"].numpy(),
                                  batch.lengths.numpy().astype(np.float32))
    assert batch.task_ids.tolist() == [0, 0]
    assert len(engine2.drain_episodes()) == 0  # drained


def test_set_next_task_switches_at_that_envs_next_reset_only():
    base = small_game(max_steps=12)
    other = small_game(max_steps=12)
    other.groups = {"blue": GroupConfig(id=5)}  # visible in every observation (agent:group)
    A = base.num_agents

    def run(pending_before_reset: bool) -> dict[str, list]:
        engine = BatchedEngine(base, num_envs=2, device="cpu", seed=3)
        if pending_before_reset:
            engine.set_next_task([1], [other], [7])
        engine.reset()
        if not pending_before_reset:
            engine.set_next_task([1], [other], [7])
        return rollout(engine, 40)

    unchanged = rollout(_started(base, 2, seed=3), 40)
    switched = run(pending_before_reset=False)
    from_start = run(pending_before_reset=True)
    first_end = next(t for t, done in enumerate(switched["dones"]) if done[A:].any())
    for t in range(40):
        assert torch.equal(switched["obs"][t][:A], unchanged["obs"][t][:A])  # env 0 untouched
        # Env 1 plays its old task until its episode ends, then the new one: from then on it
        # is exactly the env that ran the new task from the start (same maps and actions).
        same_as = unchanged if t < first_end else from_start
        assert torch.equal(switched["obs"][t][A:], same_as["obs"][t][A:]), t
        assert torch.equal(switched["rewards"][t][A:], same_as["rewards"][t][A:]), t
    assert not torch.equal(switched["obs"][first_end][A:], unchanged["obs"][first_end][A:])
    tasks = {(env, task) for ids, tasks, _, _ in switched["episodes"] for env, task in zip(ids, tasks)}
    assert (1, 0) in tasks and (1, 7) in tasks and (0, 7) not in tasks


def test_set_next_task_reports_task_ids_and_checks_compatibility():
    base = small_game(max_steps=8)
    other = small_game(max_steps=8)
    other.objects["altar"].cooldown = 1
    engine = _started(base, 2, seed=0)
    engine.set_next_task([0, 1], [other, other], [11, 12])
    for _ in range(8):
        engine.step(torch.zeros(engine.num_slots, dtype=torch.long))
    first = engine.drain_episodes()
    assert first.task_ids.tolist() == [0, 0]  # those episodes ran the initial task
    for _ in range(8):
        engine.step(torch.zeros(engine.num_slots, dtype=torch.long))
    assert sorted(engine.drain_episodes().task_ids.tolist()) == [11, 12]

    bigger = small_game().model_copy(deep=True)
    bigger.map.room.agents = 3
    bigger = GameConfig.model_validate({**bigger.model_dump(), "num_agents": 3})
    expected = "num_agents differs: the engine was built for 2, the task has 3"
    with pytest.raises(ValueError, match=expected):
        engine.set_next_task([0], [bigger], [1])
    moved = small_game()
    moved.obs_width = 9
    with pytest.raises(ValueError, match="observation size"):
        engine.set_next_task([0], [moved], [1])
    with pytest.raises(ValueError, match="out of range"):
        engine.set_next_task([5], [base], [1])


def test_a_task_with_more_converters_grows_the_engine_and_plays_like_the_reference():
    base = small_game(max_steps=15)
    crowded = small_game(max_steps=15)
    crowded.map.room.objects = {"mine_red": 3, "generator_red": 2, "altar": 2, "block": 2}
    engine = BatchedEngine(base, num_envs=2, device="cpu", seed=6)
    engine.set_next_task([0, 1], [crowded, crowded], [1, 1])
    engine.reset()  # pending tasks apply at reset
    refs = [ReferenceEnv(crowded, env_seed(6, i)) for i in range(2)]
    expected = np.concatenate([r.reset() for r in refs])
    np.testing.assert_array_equal(engine.obs.numpy(), expected)
    gen = np.random.default_rng(0)
    for _ in range(40):
        actions = gen.integers(0, len(engine.action_names), size=engine.num_slots)
        engine.step(torch.as_tensor(actions))
        obs = np.concatenate([r.step(actions[i * 2:(i + 1) * 2])[0] for i, r in enumerate(refs)])
        np.testing.assert_array_equal(engine.obs.numpy(), obs)


def test_growing_the_converter_capacity_mid_episode_changes_no_running_env():
    base = small_game(max_steps=15)
    crowded = small_game(max_steps=15)
    crowded.map.room.objects = {"mine_red": 3, "generator_red": 2, "altar": 2}
    plain, grown = _started(base, 2, seed=4), _started(base, 2, seed=4)
    gen = torch.Generator().manual_seed(3)
    switched = False
    for t in range(40):
        if t == 7:
            grown.set_next_task([1], [crowded], [1])  # grows every env's converter slots now
            assert grown.world.dims.conv_per_room == 7 > plain.world.dims.conv_per_room
        actions = torch.randint(0, len(plain.action_names), (plain.num_slots,), generator=gen)
        plain.step(actions)
        grown.step(actions)
        assert torch.equal(plain.obs[:2], grown.obs[:2])  # env 0 never switches
        assert torch.equal(plain.rewards[:2], grown.rewards[:2])
        ends = t >= 7 and bool(grown.truncations[2])
        if not switched:  # env 1 plays its old task until its episode ends (then resets into it)
            assert torch.equal(plain.rewards[2:], grown.rewards[2:])
            if ends:
                assert torch.equal(plain.final_obs[2:], grown.final_obs[2:])
            else:
                assert torch.equal(plain.obs[2:], grown.obs[2:])
        switched = switched or ends
    assert switched


def test_state_dict_round_trip_continues_identically():
    game = arena_game(max_steps=20)
    game.groups = {"team": GroupConfig(id=3)}  # agent:group, which the observer keeps aside
    pending = arena_game(max_steps=20)
    pending.agent.rewards = {"ore_red": 1.0}
    pending.groups = {"team": GroupConfig(id=4)}
    first = _started(game, 2, seed=1)
    rollout(first, 15, seed=1)
    first.set_next_task([1], [pending], [3])
    for _ in range(10):  # finished episodes stay undrained in the saved state
        first.step(torch.zeros(first.num_slots, dtype=torch.long))
    assert len(first.log.pending) > 0
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    after_save = rollout(first, 30, seed=2)

    second = BatchedEngine(game, num_envs=2, device="cpu", seed=1)
    buffer.seek(0)
    second.load_state_dict(torch.load(buffer, weights_only=True))  # plain data only
    assert_same(after_save, rollout(second, 30, seed=2))


def test_load_state_dict_refuses_another_engine():
    state = _started(small_game(), 2, seed=0).state_dict()
    with pytest.raises(ValueError, match="2 envs from env 0 seeded 0; this engine has 3 envs from env 0 seeded 0"):
        BatchedEngine(small_game(), num_envs=3).load_state_dict(state)


def test_bad_actions_and_order_of_calls():
    engine = BatchedEngine(small_game(), num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        engine.step(torch.zeros(4, dtype=torch.long))
    engine.reset()
    with pytest.raises(ValueError, match=r"shape \(4,\) of flat indices or \(4, 2\)"):
        engine.step(torch.zeros(5, dtype=torch.long))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    game = arena_game(max_steps=20)
    cpu = rollout(_started(game, 3, seed=2, device="cpu"), 40)
    cuda = rollout(_started(game, 3, seed=2, device="cuda"), 40)
    assert_same(cpu, cuda)


def test_bench_reports_json(capsys):
    from heartgrid.tools.cli import main

    assert main(["bench", "env", "small_easy_shaped", "--envs", "4", "--seconds", "0.1", "--rounds", "2",
                 "--warmup", "0.05", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["envs"] == 4 and result["agents_per_env"] == 2 and result["device"] == "cpu"
    assert result["rounds"] == 2 and len(result["round_agent_steps_per_s"]) == 2
    assert result["agent_steps_per_s"] > 0 and result["torch_threads"] == torch.get_num_threads()
    assert result["step"] == "native"  # the default on a CPU
    assert main(["bench", "env", "small_easy_shaped", "--native", "on", "--compile"]) == 2
    assert "--native on and --compile choose two engine steps" in capsys.readouterr().err
    assert main(["bench", "env", "no_such_recipe"]) == 2
    assert main(["bench", "env", "small_easy_shaped", "--seconds", "0"]) == 2
    assert main(["bench", "env", "small_easy_shaped", "--gather-threads", "0"]) == 2
    assert "--gather-threads must be >= 1" in capsys.readouterr().err
    assert main(["bench", "env", "small_easy_shaped", "system.compile=true"]) == 2
    err = capsys.readouterr().err
    assert "no key=value overrides" in err and "--compile" in err


@pytest.mark.parametrize("time_limit", ["truncate", "terminal"])
def test_truncated_envs_on_the_host_match_the_device_flags(time_limit):
    game = get_recipe("small_easy_shaped").fn("cpu").game
    game.max_steps, game.time_limit = 12, time_limit
    engine = BatchedEngine(game, num_envs=6, seed=3)
    engine.reset()
    gen = torch.Generator().manual_seed(0)
    seen = 0
    for _ in range(30):
        engine.step(torch.randint(0, len(engine.action_names), (engine.num_slots,), generator=gen))
        flagged = sorted({s // engine.num_agents for s in engine.truncations.nonzero().flatten().tolist()})
        assert engine.truncated_envs.tolist() == flagged
        seen += len(flagged)
    assert (seen > 0) == (time_limit == "truncate")
