"""The kickstart coefficient schedule and losses (heartgrid/trainer/kickstart.py)."""

from __future__ import annotations

import math

import pytest
import torch

from heartgrid.config.kickstart import KickstartConfig
from heartgrid.trainer.kickstart import coefficient_scale, kickstart_losses


def test_the_coefficients_hold_then_anneal_linearly_to_zero():
    config = KickstartConfig(teacher_uri="runs/t", kickstart_steps=1000, anneal_ratio=0.4)
    assert coefficient_scale(0, config) == 1.0
    assert coefficient_scale(600, config) == 1.0  # annealing starts at 1000 * (1 - 0.4)
    assert coefficient_scale(700, config) == pytest.approx(0.75)
    assert coefficient_scale(800, config) == pytest.approx(0.5)
    assert coefficient_scale(999, config) == pytest.approx(0.0025)
    assert coefficient_scale(1000, config) == 0.0
    assert coefficient_scale(10**9, config) == 0.0
    scales = [coefficient_scale(s, config) for s in range(0, 1100, 10)]
    assert all(a >= b for a, b in zip(scales, scales[1:]))  # never rises


def test_no_annealing_means_full_weight_until_the_end():
    config = KickstartConfig(teacher_uri="runs/t", kickstart_steps=500, anneal_ratio=0.0)
    assert coefficient_scale(499, config) == 1.0 and coefficient_scale(500, config) == 0.0


def test_the_losses_are_zero_for_a_perfect_student_and_kl_otherwise():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    values = torch.tensor([1.0, -2.0])
    action, value = kickstart_losses(logits, values, logits, values)
    assert action.item() == pytest.approx(0.0, abs=1e-7) and value.item() == 0.0

    student = torch.zeros(2, 3)  # uniform
    action, value = kickstart_losses(student, values + 2, logits, values)
    p = torch.softmax(logits, dim=-1)
    expected = (p * (p.log() - math.log(1 / 3))).sum(dim=-1).mean()
    assert action.item() == pytest.approx(expected.item(), rel=1e-6)
    assert value.item() == pytest.approx(2.0)  # (2^2) / 2


def test_the_action_loss_pulls_the_student_toward_the_teacher():
    teacher = torch.tensor([[3.0, 0.0, 0.0]])
    student = torch.zeros(1, 3, requires_grad=True)
    action, _ = kickstart_losses(student, torch.zeros(1), teacher, torch.zeros(1))
    action.backward()
    assert student.grad[0, 0] < 0 < student.grad[0, 1]  # gradient descent raises action 0
