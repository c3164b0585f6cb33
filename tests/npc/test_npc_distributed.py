"""NPCs and a kickstart teacher on 2 ranks (`heartgrid train ... --nproc 2`, gloo on the CPU):
each rank plays its own envs' learner and NPC slots, with the NPCs' action noise drawn for the
world's rows as the learner's is, so the run makes the update of one process with all the envs
(as tests/distributed/test_distributed_runs.py shows without them)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "distributed"))
from world_testing import assert_two_equal_one, kill_leftovers, launch_command, overrides, run  # noqa: E402

from heartgrid.recipes import build_config  # noqa: E402
from heartgrid.trainer.run import train  # noqa: E402

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    kill_leftovers()


@pytest.mark.parametrize("npcs", ["scripted:greedy", "self"])
def test_two_ranks_with_npcs_and_a_teacher_make_the_update_of_one_process(tmp_path: Path, tiny_teacher: Path,
                                                                          npcs: str):
    """`self`: the draw before epoch 2 waits on every rank until rank 0 has written epoch 1's
    checkpoint, then every rank plays it, as the one process does."""
    extra = ["trainer.optimizer.eps=1e-6", "game.policy_agents_pct=0.5", f"game.npc_policy_uri={npcs}",
             "game.npc_refresh_epochs=1", f"trainer.kickstart.teacher_uri={tiny_teacher}"]
    train(build_config("small_cardinal", overrides(tmp_path, "one", 1, 2, "logging.console=none", *extra)))
    two = run(launch_command(tmp_path, "two", 2, *extra))
    assert two.returncode == 0, two.stderr

    mine = assert_two_equal_one(tmp_path, *extra)
    assert "npc/heart.gained" in mine[0] and "losses/ks_action_loss" in mine[0]
    if npcs == "self":
        assert [r["npc/opponent_epoch"] for r in mine] == [0, 1]
