"""The update pass equals the rollout: `forward_sequence` over segments with episode starts
gives what stepping `forward` and zeroing the state at those starts gave."""

from __future__ import annotations

import pytest
import torch
from policy_testing import POLICY_NAMES, build, random_obs

from heartgrid.policies import reset_state

SEGMENTS, HORIZON = 3, 6


def rollout(policy, obs: torch.Tensor, state, starts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What the trainer does at rollout time: one step at a time, zeroing finished slots."""
    logits, values = [], []
    for t in range(obs.shape[1]):
        state = reset_state(state, starts[:, t])
        step_logits, step_values, state = policy(obs[:, t], state)
        logits.append(step_logits)
        values.append(step_values)
    return torch.stack(logits, 1), torch.stack(values, 1)


def nonzero_state(policy, batch: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    zeros = policy.initial_state(batch, "cpu")
    return tuple(torch.randn(s.shape, generator=generator) for s in zeros)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_sequence_matches_stepwise_rollout_with_resets(name: str) -> None:
    policy = build(name, 7)
    obs = random_obs((SEGMENTS, HORIZON), 7, seed=11)
    state = nonzero_state(policy, SEGMENTS, seed=12)  # a state carried over from the last rollout
    starts = torch.zeros(SEGMENTS, HORIZON, dtype=torch.bool)
    starts[0, 0] = starts[0, 4] = starts[2, 2] = True
    with torch.no_grad():
        expected = rollout(policy, obs, state, starts)
        got = policy.forward_sequence(obs, state, starts)
    torch.testing.assert_close(got[0], expected[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[1], expected[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_fused_path_without_starts_matches_rollout(name: str) -> None:
    policy = build(name, 7)
    obs = random_obs((SEGMENTS, HORIZON), 7, seed=13)
    state = nonzero_state(policy, SEGMENTS, seed=14)
    starts = torch.zeros(SEGMENTS, HORIZON, dtype=torch.bool)
    with torch.no_grad():
        expected = rollout(policy, obs, state, starts)
        got = policy.forward_sequence(obs, state, starts)
    torch.testing.assert_close(got[0], expected[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[1], expected[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["fast", "latent_attn_tiny"])
def test_episode_start_forgets_everything_before_it(name: str) -> None:
    policy = build(name, 7)
    obs = random_obs((SEGMENTS, HORIZON), 7, seed=15)
    state = nonzero_state(policy, SEGMENTS, seed=16)
    starts = torch.zeros(SEGMENTS, HORIZON, dtype=torch.bool)
    starts[1, 3] = True
    with torch.no_grad():
        logits, values = policy.forward_sequence(obs, state, starts)
        # Segment 1 from step 3 on is a fresh episode: same as starting there from zero state.
        no_starts = torch.zeros(1, HORIZON - 3, dtype=torch.bool)
        fresh = policy.forward_sequence(obs[1:2, 3:], policy.initial_state(1, "cpu"), no_starts)
        # The other segments do not notice segment 1's reset.
        untouched = policy.forward_sequence(obs, state, torch.zeros_like(starts))
        # And before the reset, segment 1 did depend on its carried state.
        other_state = tuple(s * 0 for s in state)
        before = policy.forward_sequence(obs, other_state, starts)
    torch.testing.assert_close(logits[1, 3:], fresh[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values[1, 3:], fresh[1][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits[[0, 2]], untouched[0][[0, 2]], atol=1e-5, rtol=1e-5)
    assert (values[1, :3] - before[1][1, :3]).abs().max() > 1e-4
    torch.testing.assert_close(values[1, 3:], before[1][1, 3:], atol=1e-5, rtol=1e-5)


def test_start_at_step_zero_ignores_the_carried_state() -> None:
    policy = build("fast", 7)
    obs = random_obs((SEGMENTS, HORIZON), 7, seed=17)
    starts = torch.zeros(SEGMENTS, HORIZON, dtype=torch.bool)
    starts[:, 0] = True
    with torch.no_grad():
        carried = policy.forward_sequence(obs, nonzero_state(policy, SEGMENTS, seed=18), starts)
        zero = policy.forward_sequence(obs, policy.initial_state(SEGMENTS, "cpu"), starts)
    assert torch.equal(carried[0], zero[0]) and torch.equal(carried[1], zero[1])


@pytest.mark.parametrize("name", ["fast", "latent_attn_tiny"])
def test_update_gradients_match_stepwise_rollout(name: str) -> None:
    """The packed LSTM pass over episode pieces back-propagates like the step loop: several
    starts in one segment, a start at the last step, a segment without starts, and a start at
    step 0 all give the weight gradients of stepping `forward` with resets."""
    policy = build(name, 7)
    obs = random_obs((4, HORIZON), 7, seed=19)
    state = nonzero_state(policy, 4, seed=20)
    starts = torch.zeros(4, HORIZON, dtype=torch.bool)
    starts[0, 1] = starts[0, 3] = starts[0, HORIZON - 1] = True
    starts[2, 0] = starts[2, 2] = True
    starts[3, HORIZON - 1] = True
    mix = torch.randn(policy.action_head(torch.zeros(1, 512)).shape[-1],
                      generator=torch.Generator().manual_seed(21))

    def gradients(run) -> dict[str, torch.Tensor]:
        policy.zero_grad()
        logits, values = run()
        ((logits * mix).sum() + (values ** 2).sum()).backward()
        return {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}

    expected = gradients(lambda: rollout(policy, obs, state, starts))
    got = gradients(lambda: policy.forward_sequence(obs, state, starts))
    assert expected.keys() == got.keys() and len(got) > 0
    for n in expected:
        torch.testing.assert_close(got[n], expected[n], atol=1e-4, rtol=1e-4, msg=n)
