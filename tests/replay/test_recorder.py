"""The recorder and the reader together: ReplayState.at(t) equals the engine's state at every
step of a recorded episode, the final step included (read in the engine's end hook), for an
env that is not env 0 of its batch. Checked against the batched engine's tensors and, step by
step, against the reference engine playing the same env (object identity, converter phases and
which actions succeeded, computed there independently). `HEARTGRID_TEST_DEVICE=cuda` records
on a GPU (where records are built in bulk, flush_every=256, by default)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from replay_helpers import (
    ReferenceTracker,
    assert_matches_batched,
    assert_matches_reference,
    batched_snapshot,
    busy_arena,
    dense_game,
    facing_actions,
    flat_ids,
    items_held,
    recipe_game,
)

from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.rng import env_seed
from heartgrid.replay.format import decode_replay, encode_replay
from heartgrid.replay.reader import ReplayState
from heartgrid.replay.recorder import EpisodeRecorder

DEVICE = os.environ.get("HEARTGRID_TEST_DEVICE", "cpu")


def record(game, num_envs: int, env: int, seed: int, *, second_episode: bool = False,
           flush_every: int | None = None, reference: bool = True) -> dict:
    """Play random actions on a batch, recording env `env`'s episode (its second with
    `second_episode`); returns the document and the engine's and reference's states."""
    engine = BatchedEngine(game, num_envs, device=DEVICE, seed=seed)
    engine.reset()
    rng = np.random.default_rng(seed)
    A = engine.num_agents
    tracker = ReferenceTracker(game, env_seed(seed, env)) if reference else None
    if second_episode:
        finished: list[int] = []
        engine.end_hooks.append(finished.extend)
        while env not in finished:
            actions = facing_actions(rng, engine)
            engine.step(actions)
            if tracker is not None:
                tracker.step(actions[env * A:(env + 1) * A].numpy())
    recorder = EpisodeRecorder(engine, env, {"source": "eval", "policy": "random"},
                               flush_every=flush_every)
    start = recorder.begin()
    assert start["steps"] == [] and start["end"] == "cut"
    final: dict = {}
    engine.end_hooks.append(lambda envs: final.update(snap=batched_snapshot(engine, env)) if env in envs else None)
    batched, refs, oks, sent = [batched_snapshot(engine, env)], [], [], []
    if tracker is not None:
        tracker.bind(start)
        refs.append(tracker.snapshot())
    while not recorder.done:
        actions = facing_actions(rng, engine)
        engine.step(actions)
        returned = recorder.record(actions)
        assert returned is recorder._steps[-1] and (returned or recorder.flush_every > 1)
        sent.append(flat_ids(actions, engine, env))
        batched.append(final.pop("snap") if recorder.done else batched_snapshot(engine, env))
        if tracker is not None:
            ok, ended = tracker.step(actions[env * A:(env + 1) * A].numpy())
            assert ended == recorder.done
            oks.append(ok)
            if not ended:  # the reference resets in place: its final state is gone
                refs.append(tracker.snapshot())
    document = recorder.document()
    # Through the file format: what a reader of the file sees.
    document = decode_replay(encode_replay(document), "test")
    return {"document": document, "batched": batched, "reference": refs, "ok": oks, "sent": sent,
            "engine": engine}


CASES = {
    # name: (game, envs in the batch, the recorded env, seed, how the episode ends)
    "small_cardinal": (lambda: recipe_game("small_cardinal", 80), 3, 2, 1, "truncated"),
    "arena": (lambda: recipe_game("arena", 100), 2, 1, 8, "truncated"),
    "arena_combat_busy": (lambda: busy_arena(200), 2, 1, 2, "truncated"),
    "dense_terminal": (lambda: dense_game(120), 3, 1, 3, "terminal"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_reader_equals_engine_at_every_step(case: str):
    make, num_envs, env, seed, end = CASES[case]
    game = make()
    run = record(game, num_envs, env, seed)
    document, batched = run["document"], run["batched"]
    replay = ReplayState(document)
    assert len(replay) == game.max_steps == len(batched) - 1
    assert document["end"] == end
    assert document["meta"]["env"] == env and document["meta"]["seed"] == seed
    for t in range(len(replay) + 1):
        state = replay.at(t)
        assert_matches_batched(state, batched[t], f"{case} step {t}")
        if t < len(run["reference"]):
            assert_matches_reference(state, run["reference"][t], f"{case} step {t} (reference)")
    for t, step in enumerate(document["steps"]):
        assert step["a"] == run["sent"][t], f"step {t + 1}: actions"
        if run["ok"][t] is not None:
            assert step["ok"] == run["ok"][t], f"step {t + 1}: ok"


def test_the_games_exercise_every_kind_of_change():
    """The cases above are only as good as what happens in them: every delta key occurs."""
    seen: set[str] = set()
    blocks_moved = False
    for case, (make, num_envs, env, seed, _) in CASES.items():
        document = record(make(), num_envs, env, seed, reference=False)["document"]
        A, C = document["num_agents"], len(document["converters"]["type"])
        for step in document["steps"]:
            seen |= set(step)
            blocks_moved |= any(obj >= A + C for obj, _, _ in step.get("pos", ()))
            seen |= {f"ok={ok}" for ok in step["ok"]}
    assert seen >= {"a", "ok", "r", "pos", "ori", "inv", "frz", "col", "cinv", "cst",
                    "ok=-1", "ok=0", "ok=1"}
    assert blocks_moved


def test_second_episode_and_desynchronised_start():
    """begin() after the step that ended the env's first (desynchronised, shorter) episode
    records the second one from its start."""
    game = recipe_game("small_cardinal", 40, desync=True)
    run = record(game, 2, 1, 5, second_episode=True)
    replay = ReplayState(run["document"])
    assert run["document"]["meta"]["episode"] == 1 and run["document"]["meta"]["start_step"] == 0
    assert len(replay) == 40
    for t in range(len(replay) + 1):
        assert_matches_batched(replay.at(t), run["batched"][t], f"step {t}")


def test_buffered_recording_gives_the_same_document():
    """flush_every > 1 (the GPU default) keeps steps on the device and builds the records in
    bulk: the same document, and the dicts `record` returned are filled in place."""
    make, num_envs, env, seed, _ = CASES["dense_terminal"]
    one = record(make(), num_envs, env, seed, reference=False)["document"]
    bulk = record(make(), num_envs, env, seed, flush_every=7, reference=False)["document"]
    one["meta"]["created"] = bulk["meta"]["created"]
    assert one == bulk


def test_recording_leaves_the_engine_alone():
    """A recorded batch plays exactly as an unrecorded one (same observations and rewards)."""
    game = busy_arena(30)
    engines = [BatchedEngine(game, 2, seed=4) for _ in range(2)]
    for engine in engines:
        engine.reset()
    recorder = EpisodeRecorder(engines[0], 1, {"source": "eval"})
    recorder.begin()
    rng = np.random.default_rng(0)
    for _ in range(45):  # past the recorded episode's end
        actions = facing_actions(rng, engines[0])
        for engine in engines:
            engine.step(actions)
        if not recorder.done:
            recorder.record(actions)
        assert torch.equal(engines[0].obs, engines[1].obs)
        assert torch.equal(engines[0].rewards, engines[1].rewards)
    assert recorder.done and recorder._on_end not in engines[0].end_hooks
    with pytest.raises(RuntimeError, match="has ended"):
        recorder.record(actions)


def test_recorder_follows_a_converter_layout_that_grows():
    """A task with more converters per room, assigned to another env mid-episode, renumbers
    every env's converters (World.grow_converters); the recording goes on correctly."""
    game = recipe_game("small_cardinal", 30)
    bigger = game.model_copy(deep=True)
    bigger.map.room.objects = {**bigger.map.room.objects, "mine_red": 3}
    engine = BatchedEngine(game, 2, seed=6)
    engine.reset()
    recorder = EpisodeRecorder(engine, 1, {"source": "eval"})
    recorder.begin()
    rng = np.random.default_rng(6)
    snaps = [batched_snapshot(engine, 1)]
    final: dict = {}
    engine.end_hooks.append(lambda envs: final.update(snap=batched_snapshot(engine, 1)) if 1 in envs else None)
    for t in range(30):
        if t == 10:
            before = engine.world.dims.conv_per_room
            engine.set_next_task([0], [bigger], [1])
            assert engine.world.dims.conv_per_room > before
        actions = facing_actions(rng, engine)
        engine.step(actions)
        recorder.record(actions)
        snaps.append(final.pop("snap") if recorder.done else batched_snapshot(engine, 1))
    replay = ReplayState(recorder.document())
    for t in range(31):
        assert_matches_batched(replay.at(t), snaps[t], f"step {t}")


def test_deterministic_documents():
    """The same seed and actions give the same document, byte for byte apart from meta.created."""
    make, num_envs, env, seed, _ = CASES["small_cardinal"]
    first = record(make(), num_envs, env, seed, reference=False)["document"]
    second = record(make(), num_envs, env, seed, reference=False)["document"]
    assert first["meta"].pop("created") and second["meta"].pop("created")
    assert json.dumps(first) == json.dumps(second)
    assert encode_replay(first) == encode_replay(second)


def test_stats_from_the_state():
    make, num_envs, env, seed, _ = CASES["dense_terminal"]
    document = record(make(), num_envs, env, seed, reference=False)["document"]
    replay = ReplayState(document)
    total = np.float32(0)
    for t in range(1, len(replay) + 1):
        stats, step, state = replay.stats(t), document["steps"][t - 1], replay.at(t)
        acting = [ok for ok in step["ok"] if ok >= 0]
        assert stats["success"] == (sum(acting) / len(acting) if acting else None)
        assert stats["hearts"] == items_held(state, "heart")
        assert stats["frozen"] == sum(f > 0 for f in state["agents"]["frozen"])
        assert stats["reward_total"] == pytest.approx(sum(state["agents"]["reward"]))
        total += np.float32(stats["reward"])
    assert replay.stats(0)["success"] is None
    assert float(total) == pytest.approx(replay.stats(len(replay))["reward_total"], abs=1e-4)


def test_recorder_refuses_misuse():
    engine = BatchedEngine(recipe_game("small_cardinal", 10), 2)
    with pytest.raises(ValueError, match="out of range"):
        EpisodeRecorder(engine, 2, {"source": "eval"})
    with pytest.raises(ValueError, match="meta\\['source'\\]"):
        EpisodeRecorder(engine, 0, {"source": "somewhere"})
    recorder = EpisodeRecorder(engine, 0, {"source": "eval"})
    with pytest.raises(RuntimeError, match="before begin"):
        recorder.record(torch.zeros(4, dtype=torch.int64))
