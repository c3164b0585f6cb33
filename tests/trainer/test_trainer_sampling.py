"""Minibatch sampling (switch `trainer.minibatch_sampling`)."""

from __future__ import annotations

import pytest
import torch

from heartgrid.config.trainer import PrioritizedSamplingConfig, TrainerConfig
from heartgrid.trainer.sampling import MinibatchSampler


def config(mode="shuffled", alpha=0.0, beta0=0.6, segments=12, minibatch_segments=3, bptt=4):
    return TrainerConfig(
        batch_size=segments * bptt, minibatch_size=minibatch_segments * bptt, bptt_horizon=bptt,
        minibatch_sampling=mode, prioritized=PrioritizedSamplingConfig(alpha=alpha, beta0=beta0),
    )


def test_shuffled_visits_every_segment_exactly_once_per_epoch():
    sampler = MinibatchSampler(config(), seed=0)
    advantages = torch.zeros(12, 4)
    orders = []
    for _ in range(3):
        minibatches = list(sampler.epoch(advantages, progress=0.0))
        assert len(minibatches) == 4
        assert all(len(mb.segments) == 3 and mb.weights is None for mb in minibatches)
        order = torch.cat([mb.segments for mb in minibatches])
        assert sorted(order.tolist()) == list(range(12))
        orders.append(order.tolist())
    assert orders[0] != orders[1]  # a new permutation every epoch


def test_shuffled_order_is_fixed_by_the_seed_and_restored_from_state():
    a, b = MinibatchSampler(config(), seed=5), MinibatchSampler(config(), seed=5)
    advantages = torch.zeros(12, 4)
    list(a.epoch(advantages, 0.0))
    state = a.state_dict()
    next_a = [mb.segments.tolist() for mb in a.epoch(advantages, 0.0)]
    list(b.epoch(advantages, 0.0))
    b.load_state_dict(state)
    assert [mb.segments.tolist() for mb in b.epoch(advantages, 0.0)] == next_a


def test_prioritized_with_alpha_zero_is_uniform_with_unit_weights():
    sampler = MinibatchSampler(config("prioritized", alpha=0.0), seed=0)
    advantages = torch.randn(12, 4)
    for mb in sampler.epoch(advantages, progress=0.3):
        assert len(set(mb.segments.tolist())) == 3  # without replacement within a minibatch
        torch.testing.assert_close(mb.weights, torch.ones(3))


def test_prioritized_prefers_large_advantages_and_corrects_with_weights():
    advantages = torch.full((12, 4), 0.01)
    advantages[7] = 10.0  # segment 7 dominates Σ|A|
    sampler = MinibatchSampler(config("prioritized", alpha=1.0, beta0=0.5), seed=0)
    counts = torch.zeros(12)
    progress = 0.5
    beta = 0.5 + 0.5 * progress
    probs = advantages.abs().sum(1).double() / advantages.abs().sum()
    for _ in range(50):
        for mb in sampler.epoch(advantages, progress):
            counts[mb.segments] += 1
            expected = (12 * probs[mb.segments]) ** (-beta)
            torch.testing.assert_close(mb.weights, expected.float())
    assert counts[7] == 200  # in every minibatch
    assert counts.sum() == 50 * 4 * 3
    # the dominant segment is down-weighted, the rare ones up-weighted
    mb = next(sampler.epoch(advantages, progress))
    assert mb.weights[mb.segments == 7].item() < 1.0 < mb.weights[mb.segments != 7].min().item()


def test_prioritized_beta_anneals_to_one():
    advantages = torch.rand(12, 4, generator=torch.Generator().manual_seed(1)) + 0.1
    sampler = MinibatchSampler(config("prioritized", alpha=1.0, beta0=0.2), seed=0)
    probs = advantages.sum(1).double() / advantages.sum()
    for progress, beta in [(0.0, 0.2), (1.0, 1.0)]:
        mb = next(sampler.epoch(advantages, progress))
        torch.testing.assert_close(mb.weights, ((12 * probs[mb.segments]) ** -beta).float())


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_prioritized_all_zero_advantages_fall_back_to_uniform(alpha):
    sampler = MinibatchSampler(config("prioritized", alpha=alpha), seed=0)
    mb = next(sampler.epoch(torch.zeros(12, 4), 0.0))
    torch.testing.assert_close(mb.weights, torch.ones(3))


def test_transitions_visit_every_step_exactly_once_per_epoch():
    trainer = TrainerConfig(batch_size=48, minibatch_size=12, bptt_horizon=4,
                            minibatch_sampling="transitions", advantages="gae")
    sampler = MinibatchSampler(trainer, seed=0)
    minibatches = list(sampler.epoch(torch.zeros(12, 4), progress=0.0))
    assert len(minibatches) == 4 and all(mb.transitions and len(mb.segments) == 12 for mb in minibatches)
    assert sorted(torch.cat([mb.segments for mb in minibatches]).tolist()) == list(range(48))


def test_transitions_need_rollout_gae():
    with pytest.raises(ValueError, match="transitions needs trainer.advantages=gae"):
        config("transitions")


def test_gae_refuses_refreshed_values():
    with pytest.raises(ValueError, match="value_target=refreshed needs them recomputed"):
        TrainerConfig(batch_size=48, minibatch_size=12, bptt_horizon=4, advantages="gae",
                      value_target="refreshed")
