"""PPO loss terms on tiny hand-made batches with hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from heartgrid.policies.distribution import logprobs_and_entropy, sample_actions
from heartgrid.trainer.losses import clipped_policy_loss, clipped_value_loss, normalize, ppo_loss


def test_clipped_policy_loss_takes_the_pessimistic_term():
    advantages = torch.tensor([1.0, -1.0, 2.0])
    ratio = torch.tensor([1.5, 0.5, 1.0])
    # A=1, r=1.5: max(−1.5, −1.2) = −1.2 (gain clipped at 1+ε)
    # A=−1, r=0.5: max(0.5, 0.8) = 0.8  (the clipped term is worse)
    # A=2, r=1: −2
    loss = clipped_policy_loss(advantages, ratio, clip_coef=0.2)
    assert loss.item() == pytest.approx((-1.2 + 0.8 - 2.0) / 3, abs=1e-7)


def test_clipped_value_loss():
    new = torch.tensor([1.0, 3.0])
    old = torch.tensor([0.0, 0.0])
    returns = torch.tensor([2.0, 0.0])
    # row 0: unclipped (1−2)² = 1, clipped V = 0.5 → (0.5−2)² = 2.25 → 2.25
    # row 1: unclipped 9, clipped V = 0.5 → 0.25 → 9
    loss = clipped_value_loss(new, old, returns, vf_clip_coef=0.5)
    assert loss.item() == pytest.approx(0.5 * (2.25 + 9.0) / 2)


def test_ppo_loss_total_and_diagnostics():
    new_logprobs = torch.log(torch.tensor([0.5, 0.25]))
    old_logprobs = torch.log(torch.tensor([0.25, 0.25]))  # ratios 2 and 1
    entropy = torch.tensor([1.0, 0.5])
    loss = ppo_loss(
        new_logprobs=new_logprobs, old_logprobs=old_logprobs, entropy=entropy,
        new_values=torch.tensor([1.0, 0.0]), old_values=torch.tensor([1.0, 0.0]),
        advantages=torch.tensor([1.0, 1.0]), returns=torch.tensor([2.0, 0.0]),
        clip_coef=0.2, vf_clip_coef=10.0, vf_coef=0.5, ent_coef=0.1,
    )
    policy = (-1.2 + -1.0) / 2            # ratio 2 clipped to 1.2; ratio 1
    value = 0.5 * (1.0 + 0.0) / 2         # (1−2)², (0−0)²
    assert loss.policy_loss.item() == pytest.approx(policy)
    assert loss.value_loss.item() == pytest.approx(value)
    assert loss.entropy.item() == pytest.approx(0.75)
    assert loss.total.item() == pytest.approx(policy + 0.5 * value - 0.1 * 0.75)
    assert loss.importance.item() == pytest.approx(1.5)
    assert loss.clipfrac.item() == pytest.approx(0.5)
    assert loss.old_approx_kl.item() == pytest.approx(-math.log(2) / 2)
    assert loss.approx_kl.item() == pytest.approx(((2 - 1) - math.log(2)) / 2)
    assert loss.current_logprobs.item() == pytest.approx((math.log(0.5) + math.log(0.25)) / 2)
    assert set(loss.diagnostics()) == {
        "policy_loss", "value_loss", "entropy", "approx_kl", "old_approx_kl", "clipfrac",
        "importance", "current_logprobs",
    }


def test_normalize():
    a = torch.tensor([1.0, 3.0])
    assert normalize(a, a.mean(), a.std()).tolist() == pytest.approx([-1 / math.sqrt(2), 1 / math.sqrt(2)])


def test_logprobs_and_entropy_of_a_known_distribution():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    logprob, entropy = logprobs_and_entropy(logits, torch.tensor([1]))
    assert logprob.item() == pytest.approx(math.log(0.25))
    assert entropy.item() == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))


def test_sample_actions_is_seeded_and_follows_the_probabilities():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).expand(20_000, 3)
    a1, lp1 = sample_actions(logits, torch.Generator().manual_seed(3))
    a2, _ = sample_actions(logits, torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2)
    freq = torch.bincount(a1, minlength=3).float() / len(a1)
    assert freq.tolist() == pytest.approx([0.7, 0.2, 0.1], abs=0.015)
    torch.testing.assert_close(lp1, torch.log(torch.tensor([0.7, 0.2, 0.1]))[a1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_sample_actions_never_draws_an_impossible_action(dtype):
    logits = torch.tensor([[0.0, float("-inf"), 2.0, float("-inf")]], dtype=dtype).expand(5_000, 4)
    actions, logprobs = sample_actions(logits, torch.Generator().manual_seed(4))
    assert set(actions.tolist()) == {0, 2}
    assert torch.isfinite(logprobs).all() and logprobs.dtype == torch.float32
