"""GAE with V-trace clipping (SPEC §2), per segment, by a reverse scan over time.

Indexing. The buffer stores, at step t of a segment, the observation the policy acted on, its
value V_t, and what the action brought: `rewards[t]` and `dones[t]` (the episode ended with this
step). In the SPEC's notation these are r_{t+1} and d_{t+1}:

    δ_t = ρ_t (r_{t+1} + γ V_{t+1} (1 − d_{t+1}) − V_t)
    A_t = δ_t + γ λ c_t A_{t+1} (1 − d_{t+1})
    ρ_t = min(ratio_t, ρ̄),  c_t = min(ratio_t, c̄)

V_{t+1} of the last step is `next_values`: the value of the observation after the segment, which
the rollout computes, so every step of a segment gets an advantage (the reference drops the last
one). A truncated episode's value beyond its end is already in `rewards` (the rollout adds
γ·V(final_obs)), so here a truncation is a done like any other.

The recursion is a linear scan, A_t = f_t(A_{t+1}) with f_t(x) = δ_t + a_t·x and a_t the carry
γλc_t(1 − d_{t+1}), computed by doubling (Hillis–Steele) rather than a loop over t: after the
round with span k, (a_t, b_t) describes f_t ∘ … ∘ f_{t+2k−1} (cut off at T), and composing two
such maps is (a, b) ∘ (a', b') = (a·a', b + a·b'). log2(T) rounds of a few whole-tensor
operations replace T rounds of Python; on a GPU that is ~20 kernel launches instead of ~200 per
minibatch. The products of carries are formed explicitly: with c̄ > 1/(γλ) (carries above 1)
they could overflow float32 over horizons of several hundred steps, where the loop would not.
"""

from __future__ import annotations

import torch
from torch import Tensor


def vtrace_gae(
    values: Tensor,
    rewards: Tensor,
    dones: Tensor,
    next_values: Tensor,
    ratios: Tensor,
    *,
    gamma: float,
    gae_lambda: float,
    rho_clip: float,
    c_clip: float,
) -> Tensor:
    """Advantages [S, T] from values, rewards, dones, ratios [S, T] and next_values [S]."""
    rho = ratios.clamp(max=rho_clip)
    c = ratios.clamp(max=c_clip)
    not_done = 1.0 - dones.to(values.dtype)
    following_values = torch.cat([values[:, 1:], next_values[:, None]], dim=1)
    deltas = rho * (rewards + gamma * following_values * not_done - values)
    carry = gamma * gae_lambda * c * not_done

    return reverse_linear_scan(carry, deltas)


def reverse_linear_scan(a: Tensor, b: Tensor) -> Tensor:
    """x_t = b_t + a_t·x_{t+1} along dim 1, with x_T = 0 (see the module docstring)."""
    horizon, span = a.shape[1], 1
    while span < horizon:
        # Each t absorbs the map starting `span` steps later (which covers the rest when it
        # reaches past the end); maps near the end are already complete and stay as they are.
        b = torch.cat([torch.addcmul(b[:, :-span], a[:, :-span], b[:, span:]), b[:, -span:]], dim=1)
        if 2 * span < horizon:  # the last round's products would not be used
            a = torch.cat([a[:, :-span] * a[:, span:], a[:, -span:]], dim=1)
        span *= 2
    return b


def explained_variance(predictions: Tensor, targets: Tensor) -> float:
    """1 − Var[targets − predictions] / Var[targets]; NaN when the targets do not vary."""
    target_var = targets.var(unbiased=False)
    if target_var.item() == 0:
        return float("nan")
    return (1.0 - (targets - predictions).var(unbiased=False) / target_var).item()
