"""Kickstarting in the trainer (trainer.kickstart, heartgrid/trainer/kickstart.py): the teacher
acts on the learner's observations with its own memory, bound to the student's actions by
name; its losses join the update with the scheduled coefficients and are logged; the
update's switches (micro-batches, single transitions, prioritized sampling) work with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from npc_testing import EPOCH_STEPS, tiny_config

from heartgrid.checkpoint import load_policy_with_source
from heartgrid.config.kickstart import KickstartConfig
from heartgrid.errors import UsageError
from heartgrid.tools.cli import main
from heartgrid.trainer.kickstart import Teacher, coefficient_scale
from heartgrid.trainer.logger import read_metrics
from heartgrid.trainer.run import train
from heartgrid.trainer.trainer import Trainer

NOOP = "game.actions.noop.enabled=true"


@pytest.fixture(scope="module")
def noop_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A teacher of small_cardinal with noop enabled: 7 actions, noop first, so every action of
    the students (6) sits at another index in its logits."""
    return train(tiny_config(tmp_path_factory.mktemp("noop"), "teacher", 1, NOOP, "policy.hidden_size=24"))


def test_the_logged_coefficients_follow_the_schedule_and_the_teacher_stops_at_the_end(
        tmp_path: Path, tiny_teacher: Path, monkeypatch: pytest.MonkeyPatch):
    """kickstart_steps = 5 epochs, annealed over the last 60%: full weight up to 256 agent
    steps, then down linearly to 0 at 640 (epoch 5, the first update without the teacher)."""
    ks = KickstartConfig(teacher_uri=str(tiny_teacher), action_loss_coef=2.0, value_loss_coef=0.5,
                         kickstart_steps=5 * EPOCH_STEPS, anneal_ratio=0.6)
    config = tiny_config(tmp_path, "schedule", 7, *(f"trainer.kickstart.{k}={v}" for k, v in ks.model_dump().items()))
    acted, act = [], Teacher.act
    monkeypatch.setattr(Teacher, "act", lambda self, *args: (acted.append(1), act(self, *args))[1])
    logged = read_metrics(train(config))
    assert len(acted) == 4 * 16  # 16 steps per epoch (8 slots, one pass), epochs 1-4 only
    scales = []
    for record in logged:
        step = int(record["metric/agent_step"])
        scale = coefficient_scale(step, ks)
        scales.append(scale)
        assert record["parameters/ks_action_coef"] == pytest.approx(2.0 * scale)
        assert record["parameters/ks_value_coef"] == pytest.approx(0.5 * scale)
        # The losses exist exactly in the updates that used the teacher.
        assert ("losses/ks_action_loss" in record) == (scale > 0), step
        if scale > 0:
            assert record["losses/ks_action_loss"] > 0 and record["losses/ks_value_loss"] >= 0
    assert scales == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3, 0.0, 0.0, 0.0])


def test_the_teacher_acts_by_action_name_with_its_own_memory(tmp_path: Path, noop_teacher: Path):
    """Each rollout, one pass from zero memory (recurrent_state=reset, which resets the teacher
    too): the stored teacher logits are the teacher's own over the rollout's observations,
    taken by the students' action names."""
    config = tiny_config(tmp_path, "names", 1, f"trainer.kickstart.teacher_uri={noop_teacher}",
                         "trainer.recurrent_state=reset")
    trainer = Trainer(config)
    assert trainer.passes == 1
    teacher, _ = load_policy_with_source(noop_teacher)  # bound to its own 7 actions
    own = teacher.action_names
    students = list(trainer.engine.action_space.names)
    assert own[0].startswith("noop") and own[1:] == students
    columns = torch.tensor([own.index(name) for name in students])
    for _ in range(2):
        trainer.rollout()
        experience = trainer.experience
        assert experience.teacher_logits.shape == (8, 16, 6) and experience.teacher_values.shape == (8, 16)
        with torch.no_grad():
            logits, values = teacher.forward_sequence(experience.obs, teacher.initial_state(8, "cpu"),
                                                      experience.episode_starts)
        torch.testing.assert_close(experience.teacher_logits, logits[..., columns])
        torch.testing.assert_close(experience.teacher_values, values)


def test_a_teacher_without_one_of_the_students_actions_is_refused(tmp_path: Path, tiny_teacher: Path):
    with pytest.raises(UsageError, match=r"the teacher does not know the action\(s\) \['noop_0'\]"):
        Trainer(tiny_config(tmp_path, "student", 1, NOOP, f"trainer.kickstart.teacher_uri={tiny_teacher}"))
    with pytest.raises(UsageError, match=r"trainer.kickstart.teacher_uri=.*nowhere"):
        Trainer(tiny_config(tmp_path, "student", 1, f"trainer.kickstart.teacher_uri={tmp_path / 'nowhere'}"))


def test_a_bad_teacher_is_exit_status_2_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    status = main(["train", "small_cardinal", "system.device=cpu", f"data_dir={tmp_path}", "run=x",
                   f"trainer.kickstart.teacher_uri={tmp_path / 'nowhere'}", "logging.console=none"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and "trainer.kickstart.teacher_uri=" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "x").exists()  # refused before the run directory was made


def test_micro_batches_make_the_update_of_the_whole_minibatch_with_the_teacher(tmp_path: Path, tiny_teacher: Path):
    teacher = f"trainer.kickstart.teacher_uri={tiny_teacher}"
    whole = Trainer(tiny_config(tmp_path, "whole", 1, teacher))
    micro = Trainer(tiny_config(tmp_path, "micro", 1, teacher, "trainer.micro_batch_size=32"))
    plain = Trainer(tiny_config(tmp_path, "plain", 1))
    for trainer in (whole, micro, plain):
        trainer.train_epoch()
    for name, a in whole.policy.state_dict().items():
        torch.testing.assert_close(micro.policy.state_dict()[name], a, rtol=1e-5, atol=1e-6, msg=name)
    # ... and the teacher changed it: the same run without one ends elsewhere.
    assert any(not torch.allclose(a, b) for a, b in zip(whole.policy.parameters(), plain.policy.parameters()))


@pytest.mark.parametrize("switches", [
    ["trainer.advantages=gae", "trainer.minibatch_sampling=transitions"],
    ["trainer.minibatch_sampling=prioritized", "trainer.prioritized.alpha=1.0"],
], ids=["transitions", "prioritized"])
def test_the_sampling_switches_train_with_the_teacher(tmp_path: Path, tiny_teacher: Path, switches: list[str]):
    trainer = Trainer(tiny_config(tmp_path, "switch", 2, f"trainer.kickstart.teacher_uri={tiny_teacher}", *switches))
    before = [p.detach().clone() for p in trainer.policy.parameters()]
    record = trainer.train_epoch()
    assert record["losses/ks_action_loss"] > 0 and record["parameters/ks_action_coef"] == 1.0
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.policy.parameters()))
