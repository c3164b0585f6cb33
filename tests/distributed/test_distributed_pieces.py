"""The pieces of a run on several ranks, in one process (no process group): where a rank's
rows sit in the world's batch, its share of a minibatch, the world's actions, the curriculum
over split envs, the checkpoint's rank states, and the world size check."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from heartgrid.checkpoint import CheckpointError
from heartgrid.checkpoint.world import join_rank_states, rank_states, split_rank_state, world_size_of
from heartgrid.curriculum.driver import CurriculumDriver, EnvShare
from heartgrid.errors import UsageError
from heartgrid.policies.distribution import sample_actions
from heartgrid.recipes import build_config
from heartgrid.trainer.distributed import RowLayout, World, sample_world_actions
from heartgrid.trainer.world_start import with_world_size
from heartgrid.trainer.run import RunDirectoryError, check_resumable
from heartgrid.trainer.sampling import Minibatch
from heartgrid.trainer.shards import WorldShare


def world(rank: int, size: int) -> World:
    return World(rank, size, rank, torch.device("cpu"), "gloo", 60.0)


@pytest.mark.parametrize("size, slots, passes", [(2, 4, 3), (3, 2, 2), (4, 6, 1)])
@pytest.mark.parametrize("transitions", [False, True])
def test_every_world_index_belongs_to_exactly_one_rank_at_the_row_one_process_fills(size, slots, passes, transitions):
    horizon = 5
    rows = passes * slots * size
    # One process with every rank's envs writes world row p·(W·s) + j in pass p from slot j,
    # and rank r's slot i is that process's slot r·s + i: give each (rank, local row) that name.
    expected = {}
    for r in range(size):
        for p in range(passes):
            for i in range(slots):
                expected[(r, p * slots + i)] = p * size * slots + r * slots + i
    indices = torch.randperm(rows * horizon if transitions else rows, generator=torch.Generator().manual_seed(1))
    owners = torch.full((len(indices),), -1)
    for r in range(size):
        mine, local = RowLayout(r, size, slots, horizon).local(indices, transitions)
        assert (owners[mine] == -1).all()
        owners[mine] = r
        for index, local_index in zip(indices[mine].tolist(), local.tolist(), strict=True):
            if transitions:
                assert expected[(r, local_index // horizon)] == index // horizon
                assert local_index % horizon == index % horizon
            else:
                assert expected[(r, local_index)] == index
    assert (owners >= 0).all()


def test_world_rows_puts_each_ranks_values_at_its_world_rows():
    size, slots, passes = 3, 2, 2
    layout = RowLayout(0, size, slots, horizon=4)
    # Rank r's value of local row l: 100·r + l.
    gathered = torch.stack([torch.arange(passes * slots) + 100 * r for r in range(size)])
    world_values = layout.world_rows(gathered)
    for r in range(size):
        for p in range(passes):
            for i in range(slots):
                assert world_values[p * size * slots + r * slots + i] == 100 * r + p * slots + i


def test_ranks_take_the_actions_of_one_process_holding_all_rows():
    logits = torch.randn(12, 6, generator=torch.Generator().manual_seed(0))
    one = torch.Generator().manual_seed(7)
    whole_actions, whole_logprobs = sample_actions(logits, one)
    for r in range(3):
        generator = torch.Generator().manual_seed(7)
        actions, logprobs = sample_world_actions(logits[4 * r:4 * (r + 1)], generator, world(r, 3))
        assert torch.equal(actions, whole_actions[4 * r:4 * (r + 1)])
        assert torch.equal(logprobs, whole_logprobs[4 * r:4 * (r + 1)])
        assert torch.equal(generator.get_state(), one.get_state())  # in step for the next draw


def test_rank_shares_of_a_minibatch_add_up_to_it():
    size, slots, horizon = 2, 4, 3
    segments = torch.randperm(2 * slots * size, generator=torch.Generator().manual_seed(2))[:12]
    weights = torch.rand(12, generator=torch.Generator().manual_seed(3))
    minibatch = Minibatch(segments, weights)
    per_rank = [WorldShare(world(r, size), RowLayout(r, size, slots, horizon), None).parts(
        minibatch, micro=2, legacy=False, device=torch.device("cpu")) for r in range(size)]
    assert [len(parts) for parts in per_rank] == [3, 3]  # world parts of 2 x 2 segments
    for k in range(3):
        parts = [per_rank[r][k] for r in range(size)]
        assert sum(p.count for p in parts) == 4
        assert [p.last for p in parts] == [k == 2] * size
        # Each rank's loss weighs its samples' share; DDP's average over W makes it the sum.
        assert sum(p.scale for p in parts) / size == pytest.approx(4 / 12)
        assert sum(p.share for p in parts) == pytest.approx(4 / 12)
        held = sorted(w for p in parts for w in p.weights.tolist())
        assert held == sorted(weights[4 * k:4 * (k + 1)].tolist())


class RecordingEngine:
    def __init__(self, num_envs: int):
        self.num_envs = num_envs
        self.tasks: dict[int, int] = {}

    def set_next_task(self, env_ids, games, task_ids):
        assert all(0 <= env < self.num_envs for env in env_ids)
        self.tasks.update(zip(env_ids, task_ids))


class Episodes:
    def __init__(self, env_ids, task_ids, rewards):
        self.env_ids = torch.tensor(env_ids)
        self.task_ids = torch.tensor(task_ids)
        self.rewards = torch.tensor(rewards)


def test_a_curriculum_over_split_envs_assigns_the_tasks_of_one_over_all():
    recipe = build_config("arena_basic_easy_shaped", [])  # its curriculum: buckets, learning progress
    game, config = recipe.game, recipe.curriculum.model_copy(update={"new_task_rate": 0.3})
    whole = RecordingEngine(6)
    single = CurriculumDriver(config, game, whole, seed=5)
    halves = [RecordingEngine(3), RecordingEngine(3)]
    drivers = [CurriculumDriver(config, game, EnvShare(halves[r], 3 * r, 6), seed=5) for r in range(2)]
    for round_ in range(5):
        ended = [(env, 0.1 * env + round_) for env in range(6) if (env + round_) % 2 == 0]
        batch = Episodes([e for e, _ in ended], [single.env_tasks[e].id for e, _ in ended], [r for _, r in ended])
        for driver in [single, *drivers]:
            driver.on_episodes(batch)
    assert {env: whole.tasks[env] for env in range(6)} == {
        **halves[0].tasks, **{3 + env: task for env, task in halves[1].tasks.items()}}
    assert drivers[0].state_dict() == drivers[1].state_dict() == single.state_dict()


def test_a_checkpoint_holds_each_ranks_own_state_and_refuses_another_world(tmp_path: Path):
    states = [{"epoch": 3, "optimizer": {"lr": 1.0}, "engine": {"first_env": 4 * r}, "rng": {"torch": r},
               "recurrent_state": [r], "episode_starts": r, "stats": {"x": [float(r)]}} for r in range(2)]
    shared, own = split_rank_state(states[0])
    assert "engine" not in shared and own["engine"] == {"first_env": 0}
    saved = join_rank_states(shared, [split_rank_state(s)[1] for s in states])
    assert world_size_of(saved) == 2 and world_size_of(states[0]) == 1
    assert rank_states(saved, 2, tmp_path) == states
    with pytest.raises(CheckpointError, match=r"state of 2 rank\(s\) but this run has 1.*--nproc_per_node 2"):
        rank_states(saved, 1, tmp_path)
    with pytest.raises(CheckpointError, match=r"state of 1 rank\(s\) but this run has 2"):
        rank_states(states[0], 2, tmp_path)
    del saved["world"]["ranks"][1]["engine"]
    with pytest.raises(CheckpointError, match="rank 1 lacks engine"):
        rank_states(saved, 2, tmp_path)
    saved["world"]["ranks"].pop()
    with pytest.raises(CheckpointError, match="each of its 2 ranks but holds 1"):
        rank_states(saved, 2, tmp_path)


def test_the_world_size_is_filled_in_at_launch(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert with_world_size(build_config("small_cardinal", [])).distributed.world_size == 1
    with pytest.raises(UsageError, match="not started by torchrun"):
        with_world_size(build_config("small_cardinal", ["distributed.world_size=2"]))
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert with_world_size(build_config("small_cardinal", [])).distributed.world_size == 4
    with pytest.raises(UsageError, match="torchrun started 4 ranks"):
        with_world_size(build_config("small_cardinal", ["distributed.world_size=2"]))


def test_a_run_resumes_only_on_the_world_size_it_was_trained_on(tmp_path: Path):
    two = build_config("small_cardinal", [f"data_dir={tmp_path}", "run=r", "distributed.world_size=2"])
    two.run_dir.mkdir(parents=True)
    (two.run_dir / "config.json").write_text(two.to_json())
    check_resumable(two, two.run_dir)
    one = build_config("small_cardinal", [f"data_dir={tmp_path}", "run=r"])
    with pytest.raises(RunDirectoryError, match=r"on 1 rank\(s\): it was trained on 2.*--nproc_per_node 2"):
        check_resumable(one, one.run_dir)


def test_nproc_is_checked_before_torchrun_starts(capsys):
    from heartgrid.tools.cli import main

    assert main(["train", "small_cardinal", "distributed.world_size=3", "--nproc", "2"]) == 2
    assert "distributed.world_size=3 but --nproc 2" in capsys.readouterr().err
    assert main(["train", "small_cardinal", "--nproc", "0"]) == 2
    assert "--nproc must be at least 1" in capsys.readouterr().err
