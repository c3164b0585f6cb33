"""V-trace-clipped GAE against a plain Python loop of the SPEC §2 formula, and hand numbers."""

from __future__ import annotations

import pytest
import torch

from heartgrid.trainer.advantages import explained_variance, vtrace_gae


def plain_loop(values, rewards, dones, next_values, ratios, gamma, lam, rho_clip, c_clip):
    """SPEC §2 written element by element: step t's reward and done are r_{t+1}, d_{t+1}."""
    segments, horizon = len(values), len(values[0])
    out = [[0.0] * horizon for _ in range(segments)]
    for s in range(segments):
        following = 0.0
        for t in reversed(range(horizon)):
            v_next = values[s][t + 1] if t + 1 < horizon else next_values[s]
            not_done = 0.0 if dones[s][t] else 1.0
            rho = min(ratios[s][t], rho_clip)
            c = min(ratios[s][t], c_clip)
            delta = rho * (rewards[s][t] + gamma * v_next * not_done - values[s][t])
            following = delta + gamma * lam * c * following * not_done
            out[s][t] = following
    return out


def random_batch(segments=5, horizon=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(segments, horizon, generator=g, dtype=torch.float64)
    rewards = torch.randn(segments, horizon, generator=g, dtype=torch.float64)
    dones = torch.rand(segments, horizon, generator=g) < 0.2
    next_values = torch.randn(segments, generator=g, dtype=torch.float64)
    ratios = torch.rand(segments, horizon, generator=g, dtype=torch.float64) * 2.0
    return values, rewards, dones, next_values, ratios


@pytest.mark.parametrize("horizon", [1, 2, 7, 64])
@pytest.mark.parametrize("rho_clip, c_clip", [(1.0, 1.0), (0.8, 1.3), (2.0, 0.5)])
def test_matches_plain_loop(rho_clip, c_clip, horizon):
    values, rewards, dones, next_values, ratios = random_batch(horizon=horizon, seed=horizon)
    if horizon == 1:
        dones[0, 0], ratios[0, 0], ratios[1, 0] = True, 1.5, 0.5
    assert dones.any() and (ratios > 1).any() and (ratios < 1).any()
    got = vtrace_gae(values, rewards, dones, next_values, ratios,
                     gamma=0.97, gae_lambda=0.9, rho_clip=rho_clip, c_clip=c_clip)
    want = plain_loop(values.tolist(), rewards.tolist(), dones.tolist(), next_values.tolist(),
                      ratios.tolist(), 0.97, 0.9, rho_clip, c_clip)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_hand_computed_segment():
    # γ = λ = 0.5, ratio 1. The episode ends with step 1.
    # t=2: δ = 3 + 0.5·4 − 2 = 3                      A = 3
    # t=1: δ = 0 + 0 − 1 = −1 (done: no bootstrap)     A = −1 (nothing carried across the end)
    # t=0: δ = 1 + 0.5·1 − 0.5 = 1                     A = 1 + 0.25·(−1) = 0.75
    values = torch.tensor([[0.5, 1.0, 2.0]])
    rewards = torch.tensor([[1.0, 0.0, 3.0]])
    dones = torch.tensor([[False, True, False]])
    got = vtrace_gae(values, rewards, dones, torch.tensor([4.0]), torch.ones(1, 3),
                     gamma=0.5, gae_lambda=0.5, rho_clip=1.0, c_clip=1.0)
    assert got.tolist() == [[0.75, -1.0, 3.0]]


def test_ratio_clipping_uses_rho_for_delta_and_c_for_trace():
    values = torch.zeros(1, 2)
    rewards = torch.tensor([[1.0, 1.0]])
    dones = torch.zeros(1, 2, dtype=torch.bool)
    ratios = torch.tensor([[3.0, 0.5]])
    got = vtrace_gae(values, rewards, dones, torch.zeros(1), ratios,
                     gamma=1.0, gae_lambda=1.0, rho_clip=2.0, c_clip=0.25)
    # t=1: δ = min(0.5, 2)·1 = 0.5 → A = 0.5
    # t=0: δ = min(3, 2)·1 = 2;  A = 2 + min(3, 0.25)·0.5 = 2.125
    assert got.tolist() == [[2.125, 0.5]]


def test_explained_variance():
    targets = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(targets, targets) == 1.0
    assert explained_variance(torch.full((4,), 2.5), targets) == 0.0
    assert explained_variance(targets, torch.ones(4)) != explained_variance(targets, torch.ones(4))  # NaN
