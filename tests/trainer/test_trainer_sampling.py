"""Minibatch sampling (switch `trainer.minibatch_sampling`)."""

from __future__ import annotations

import pytest
import torch

from heartgrid.config.trainer import PrioritizedSamplingConfig, TrainerConfig
from heartgrid.trainer.sampling import MinibatchSampler


def config(mode="shuffled", alpha=0.0, beta0=0.6, segments=12, minibatch_segments=3, bptt=4, **prioritized):
    return TrainerConfig(
        batch_size=segments * bptt, minibatch_size=minibatch_segments * bptt, bptt_horizon=bptt,
        minibatch_sampling=mode,
        prioritized=PrioritizedSamplingConfig(alpha=alpha, beta0=beta0, **prioritized),
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
        assert len(mb.segments) == 3 and all(0 <= s < 12 for s in mb.segments.tolist())
        torch.testing.assert_close(mb.weights, torch.ones(3))


def test_prioritized_prefers_large_advantages_and_corrects_with_weights():
    advantages = torch.full((12, 4), 0.01)
    advantages[7] = 10.0  # segment 7 dominates Σ|A|
    sampler = MinibatchSampler(config("prioritized", alpha=1.0, beta0=0.5), seed=0)
    counts = torch.zeros(12)
    progress = 0.5
    beta = 0.5 + 0.5 * 1.0 * progress  # the reference schedule, alpha = 1
    probs = advantages.abs().sum(1).double() / advantages.abs().sum()
    weights = {True: [], False: []}  # drawn segment is 7 -> its weights
    for _ in range(50):
        for mb in sampler.epoch(advantages, progress):
            counts.index_add_(0, mb.segments, torch.ones(len(mb.segments)))  # duplicates count twice
            expected = (12 * probs[mb.segments]) ** (-beta)
            torch.testing.assert_close(mb.weights, expected.float())
            for segment, weight in zip(mb.segments.tolist(), mb.weights.tolist()):
                weights[segment == 7].append(weight)
    assert counts.sum() == 50 * 4 * 3
    assert counts[7] > 0.95 * counts.sum()  # P = 0.989
    # the dominant segment is down-weighted, the rare ones up-weighted
    assert max(weights[True]) < 1.0 < min(weights[False])


@pytest.mark.parametrize("schedule, alpha, final", [("reference", 1.0, 1.0), ("reference", 0.5, 0.6),
                                                     ("to_one", 0.5, 1.0)])
def test_prioritized_beta_schedules(schedule, alpha, final):
    """`reference`: beta0 + (1 - beta0)·alpha·p (PufferLib, the reference system);
    `to_one`: beta0 + (1 - beta0)·p."""
    advantages = torch.rand(12, 4, generator=torch.Generator().manual_seed(1)) + 0.1
    sampler = MinibatchSampler(config("prioritized", alpha=alpha, beta0=0.2, beta_schedule=schedule), seed=0)
    probs = advantages.sum(1).double() ** alpha
    probs /= probs.sum()
    for progress, beta in [(0.0, 0.2), (0.5, 0.2 + 0.8 * (final - 0.2) / 0.8 * 0.5), (1.0, final)]:
        assert sampler.beta(progress) == pytest.approx(beta)
        mb = next(sampler.epoch(advantages, progress))
        torch.testing.assert_close(mb.weights, ((12 * probs[mb.segments]) ** -beta).float())


@pytest.mark.parametrize("draws", ["with_replacement", "without_replacement"])
def test_prioritized_weights_remove_the_sampling_bias_only_with_replacement(draws):
    """By simulation: priorities [20, 10, 1 x 8], alpha = beta = 1, 5 of 10 segments a minibatch.
    Unbiased means E[w_i · times drawn_i] is the same (k/S = 0.5) for every segment."""
    sampler = MinibatchSampler(config("prioritized", alpha=1.0, beta0=1.0, segments=10, minibatch_segments=5,
                                      draws=draws), seed=0)
    advantages = torch.tensor([20.0, 10.0] + [1.0] * 8)[:, None].expand(10, 4) / 4
    totals, minibatches = torch.zeros(10, dtype=torch.float64), 0
    for _ in range(5000):
        for mb in sampler.epoch(advantages, progress=0.0):
            totals.index_add_(0, mb.segments, mb.weights.double())
            minibatches += 1
    expected_per_draw = totals / minibatches
    if draws == "with_replacement":
        torch.testing.assert_close(expected_per_draw, torch.full((10,), 0.5, dtype=torch.float64), rtol=0.1, atol=0)
    else:  # the reference's draws: the top segments end up under-weighted several times over
        assert expected_per_draw[0] < 0.25 and expected_per_draw[2:].min() > 1.2


def test_prioritized_priorities_refresh_before_each_minibatch_by_default():
    calls = []

    def refresh():
        calls.append(1)
        return torch.rand(12, 4)

    for refresh_mode, expected_calls in [("minibatch", 4), ("update", 0)]:
        calls.clear()
        sampler = MinibatchSampler(config("prioritized", alpha=1.0, refresh=refresh_mode), seed=0)
        assert len(list(sampler.epoch(torch.rand(12, 4), 0.0, refresh=refresh))) == 4
        assert len(calls) == expected_calls


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
