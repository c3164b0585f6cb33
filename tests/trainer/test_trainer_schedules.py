"""Schedules (switch `trainer.schedules`): change the value they name, and nothing when off."""

from __future__ import annotations

import math

import pytest
from trainer_fakes import make_trainer, tiny_config

from heartgrid.config.trainer import ScheduleConfig, TrainerConfig
from heartgrid.trainer.schedules import Schedules, schedule_value


@pytest.mark.parametrize(
    "kind, halfway",
    [
        ("constant", 1.0),
        ("linear", 0.55),
        ("cosine", 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2))),
        ("exponential", math.sqrt(0.1)),
        ("logarithmic", 1.0 - 0.9 * math.log1p(4.5) / math.log1p(9.0)),
    ],
)
def test_schedule_shapes(kind, halfway):
    schedule = ScheduleConfig(type=kind, initial=1.0, final=0.1)
    assert schedule_value(schedule, 0.0) == pytest.approx(1.0)
    assert schedule_value(schedule, 0.5) == pytest.approx(halfway)
    assert schedule_value(schedule, 1.0) == pytest.approx(1.0 if kind == "constant" else 0.1)
    assert schedule_value(schedule, 7.0) == schedule_value(schedule, 1.0)  # clamped past the end


def test_no_schedules_means_every_value_is_the_config_constant():
    trainer = TrainerConfig(total_timesteps=1000, clip_coef=0.3, ent_coef=0.05, vf_clip_coef=0.2)
    for step in (0, 500, 1000, 5000):
        assert Schedules(trainer).values(step) == {
            "learning_rate": trainer.optimizer.learning_rate,
            "clip_coef": 0.3, "ent_coef": 0.05, "vf_clip_coef": 0.2,
        }


def test_a_schedule_changes_only_the_value_it_names():
    trainer = TrainerConfig(
        total_timesteps=1000,
        schedules={"ent_coef": ScheduleConfig(type="linear", initial=0.02, final=0.0)},
    )
    values = Schedules(trainer).values(250)
    assert values["ent_coef"] == pytest.approx(0.015)
    assert values["learning_rate"] == trainer.optimizer.learning_rate
    assert values["clip_coef"] == trainer.clip_coef
    assert values["vf_clip_coef"] == trainer.vf_clip_coef


def test_exponential_schedule_to_zero_is_refused():
    with pytest.raises(ValueError, match="exponential schedule needs initial and final > 0"):
        ScheduleConfig(type="exponential", initial=1e-3, final=0.0)
    unchecked = ScheduleConfig.model_construct(type="exponential", initial=1e-3, final=0.0)
    with pytest.raises(ValueError, match="exponential schedule needs initial and final > 0"):
        schedule_value(unchecked, 0.5)


def test_trainer_applies_the_learning_rate_schedule_and_logs_it():
    config = tiny_config(schedules={"learning_rate": ScheduleConfig(type="linear", initial=0.01, final=0.0)})
    records = []
    trainer = make_trainer(config, on_log=records.append)
    trainer.train_epoch()
    trainer.train_epoch()
    total = config.trainer.total_timesteps
    expected = 0.01 * (1 - trainer.agent_step / total)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [pytest.approx(expected)]
    assert records[-1]["parameters/learning_rate"] == pytest.approx(expected)
    assert records[-1]["parameters/ent_coef"] == config.trainer.ent_coef
    assert records[0]["parameters/learning_rate"] != records[1]["parameters/learning_rate"]


def test_trainer_without_schedules_keeps_every_parameter_constant():
    config = tiny_config()
    records = []
    trainer = make_trainer(config, on_log=records.append)
    trainer.train()
    assert len(records) == 4
    for name, value in [("learning_rate", config.trainer.optimizer.learning_rate),
                        ("clip_coef", config.trainer.clip_coef), ("ent_coef", config.trainer.ent_coef),
                        ("vf_clip_coef", config.trainer.vf_clip_coef)]:
        assert {r[f"parameters/{name}"] for r in records} == {value}
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [config.trainer.optimizer.learning_rate]
