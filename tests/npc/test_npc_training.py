"""NPCs while training (heartgrid/trainer/sides.py, docs/npcs.md): the policy plays and the
experience holds only the learner's slots, the NPCs' side is logged apart as `npc/*`, and a run
with NPCs and a kickstart teacher keeps the invariants: the metric contract, determinism and
exact resume after a stop and after a kill."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from npc_testing import (
    EPOCH_STEPS, GREEDY_NPCS, assert_same, engine_content, latest, records, stop_after, tiny_config,
)

from heartgrid.config.overrides import apply_overrides
from heartgrid.engine.action_space import ActionSpace
from heartgrid.errors import UsageError
from heartgrid.policies.scripted import make_scripted_policy
from heartgrid.recipes import build_config
from heartgrid.trainer.logger import read_metrics
from heartgrid.trainer.metric_contract import missing_metrics
from heartgrid.trainer.run import train
from heartgrid.trainer.trainer import Trainer

EPOCHS = 6


def test_the_policy_plays_and_the_experience_holds_only_the_learners_slots(tmp_path: Path):
    trainer = Trainer(tiny_config(tmp_path, "slots", 1, *GREEDY_NPCS))
    engine, experience = trainer.engine, trainer.experience
    assert engine.num_slots == 8 and trainer.sides.num_slots == 4  # agent 0 of each of 4 envs
    assert experience.obs.shape[:2] == (EPOCH_STEPS // 16, 16) and trainer.passes == 2
    assert trainer.state[0].shape[0] == 4 and experience.teacher_logits is None

    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    step = engine.step

    def recording_step(actions: torch.Tensor) -> None:
        obs = engine.obs.clone()
        step(actions)
        seen.append((obs, actions.clone(), engine.rewards.clone()))

    engine.step = recording_step
    trainer.rollout()
    assert len(seen) == 2 * 16

    greedy = make_scripted_policy("greedy", engine.features, engine.action_space.names)
    learner, npc = torch.arange(0, 8, 2), torch.arange(1, 8, 2)
    rewards = experience.rewards - experience.bootstraps  # the environment's, as stored
    for i, (obs, actions, step_rewards) in enumerate(seen):
        rows, t = slice((i // 16) * 4, (i // 16 + 1) * 4), i % 16
        assert torch.equal(experience.obs[rows, t], obs[learner]), i
        assert torch.equal(experience.actions[rows, t], actions[learner]), i
        torch.testing.assert_close(rewards[rows, t], step_rewards[learner])
        # The NPCs' actions are among those the greedy policy chose on their observations.
        chosen = greedy.choose(obs[npc])
        assert chosen[torch.arange(4), actions[npc]].all(), i


def kickstarted(teacher: Path) -> list[str]:
    """The teacher's coefficients anneal over epochs 2-4 of the 6."""
    return [f"trainer.kickstart.teacher_uri={teacher}", f"trainer.kickstart.kickstart_steps={4 * EPOCH_STEPS}",
            "trainer.kickstart.anneal_ratio=0.5"]


def test_both_sides_are_logged_apart_and_the_contract_holds(tmp_path: Path, tiny_teacher: Path):
    config = tiny_config(tmp_path, "greedy", EPOCHS, *GREEDY_NPCS, *kickstarted(tiny_teacher))
    logged = read_metrics(train(config))
    assert missing_metrics(config, {name for record in logged for name in record}) == []
    npc_hearts = [r["npc/heart.gained"] for r in logged if "npc/heart.gained" in r]
    learner_hearts = [r["env_agent/heart.gained"] for r in logged if "env_agent/heart.gained" in r]
    assert len(npc_hearts) == len(learner_hearts) >= EPOCHS - 1
    # The greedy heart-seekers make hearts; the learner, barely trained, hardly any.
    assert sum(npc_hearts) / len(npc_hearts) > 1.0 > 3 * sum(learner_hearts) / len(learner_hearts)
    assert all("npc/reward" in r for r in logged if "npc/heart.gained" in r)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, tiny_teacher: Path):
    """NPCs played by a recurrent checkpoint (the tiny teacher) and a kickstart teacher together:
    the config, and the uninterrupted run. Episodes of 200 steps (the first ones shortened at
    random, as always in training) outlast most of the run's 192 steps, so the NPCs' and the
    teacher's memory carries to its end: a resume that lost it would end otherwise."""
    data_dir = tmp_path_factory.mktemp("both")

    def config(run: str):
        return tiny_config(data_dir, run, EPOCHS, "game.policy_agents_pct=0.5", "game.max_steps=200",
                           f"game.npc_policy_uri={tiny_teacher}", *kickstarted(tiny_teacher))

    return config, train(config("uninterrupted"))


def test_the_same_seed_gives_the_same_run(both, tmp_path: Path):
    config, run_dir = both
    again = train(apply_overrides(config("again"), {"data_dir": str(tmp_path)}))
    assert records(again) == records(run_dir)
    epoch, weights, state = latest(again)
    reference_epoch, reference_weights, reference_state = latest(run_dir)
    assert epoch == reference_epoch == EPOCHS
    assert_same(weights, reference_weights, "policy")
    assert_same(state["npc"], reference_state["npc"], "npc")


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_stopped_or_killed_run_resumes_exactly(both, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str):
    """Stopped after epoch 3 (a checkpoint of epoch 3 is written) or killed during epoch 4
    (the run resumes from its checkpoint of epoch 2): either way, in the teacher's annealing
    window, the resumed run ends exactly as the uninterrupted one."""
    config, run_dir = both
    resumed = apply_overrides(config(how), {"data_dir": str(tmp_path)})
    with monkeypatch.context() as patch:
        stop_after(patch, 3, how)
        if how == "kill":
            with pytest.raises(KeyboardInterrupt):
                train(resumed)
        else:
            train(resumed)
    assert latest(resumed.run_dir)[0] == (3 if how == "stop" else 2)
    train(resumed)  # the same command resumes
    epoch, weights, state = latest(resumed.run_dir)
    reference_epoch, reference_weights, reference_state = latest(run_dir)
    assert epoch == reference_epoch
    assert_same(weights, reference_weights, "policy")
    for key in ("npc", "teacher", "rng", "recurrent_state", "optimizer"):
        assert_same(state[key], reference_state[key], key)
    assert_same(engine_content(state["engine"]), engine_content(reference_state["engine"]), "engine")
    assert records(resumed.run_dir) == records(run_dir)


def test_the_npc_and_teacher_state_round_trip(tmp_path: Path, tiny_teacher: Path):
    config = tiny_config(tmp_path, "round", 2, "game.policy_agents_pct=0.5", f"game.npc_policy_uri={tiny_teacher}",
                         *kickstarted(tiny_teacher))
    trained = Trainer(config)
    trained.train_epoch()
    trained.sides.dones = torch.arange(8) % 3 == 0  # as if some episodes had just ended
    state = trained.state_dict()
    assert state["npc"]["dones"].shape == (8,) and state["teacher"]["state"][0].shape[0] == 4
    fresh = Trainer(config)
    assert not all(s.eq(0).all() for s in state["npc"]["players"]["state"])  # something to restore
    fresh.load_state_dict(state)
    assert_same(fresh.state_dict()["npc"], state["npc"], "npc")
    assert_same(fresh.state_dict()["teacher"], state["teacher"], "teacher")


def test_a_run_without_npcs_keeps_every_slot_and_logs_no_npc_side(tmp_path: Path):
    trainer = Trainer(tiny_config(tmp_path, "plain", 1))
    assert trainer.sides.npcs is None and trainer.sides.num_slots == trainer.engine.num_slots == 8
    assert "npc" not in trainer.state_dict() and "teacher" not in trainer.state_dict()
    record = trainer.train_epoch()
    assert not any(name.startswith(("npc/", "losses/ks_", "parameters/ks_")) for name in record)


def test_the_rollout_fits_the_learner_slots_not_every_slot():
    """small_cardinal: 32 envs x 2 agents, bptt 16; with NPCs on half the agents, 32 learner slots."""
    sizes = ["trainer.minibatch_size=256", "trainer.batch_size=512"]  # 32 segments
    assert build_config("small_cardinal", [*GREEDY_NPCS, *sizes]).trainer.batch_size == 512
    with pytest.raises(ValueError, match=r"multiple of the 64 agent slots"):
        build_config("small_cardinal", sizes)
    with pytest.raises(ValueError, match=r"multiple of the 32 learner slots .* 1 of game.num_agents=2 agents"):
        build_config("small_cardinal", [*GREEDY_NPCS, "trainer.minibatch_size=256", "trainer.batch_size=256"])


def test_an_npc_policy_that_cannot_be_played_is_one_usage_error(tmp_path: Path):
    names = ActionSpace.from_game(build_config("small_cardinal", []).game).names
    assert names  # the scripted policies bind to these
    with pytest.raises(UsageError, match="unknown scripted policy 'sleepy'"):
        Trainer(tiny_config(tmp_path, "bad", 1, "game.policy_agents_pct=0.5", "game.npc_policy_uri=scripted:sleepy"))
    with pytest.raises(UsageError, match=r"npc_policy_uri=.*nowhere"):
        Trainer(tiny_config(tmp_path, "bad", 1, "game.policy_agents_pct=0.5",
                            f"game.npc_policy_uri={tmp_path / 'nowhere'}"))
