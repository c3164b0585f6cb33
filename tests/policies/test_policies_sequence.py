"""The update pass equals the rollout: `forward_sequence` over segments with episode starts
gives what stepping `forward` and zeroing the state at those starts gave."""

from __future__ import annotations

import pytest
import torch
from policy_testing import POLICY_NAMES, build, random_obs

from heartgrid.policies import Policy, recurrent

SEGMENTS, HORIZON = 3, 6


@pytest.fixture(params=["one_call", "per_start_time"])
def lstm_path(request, monkeypatch) -> str:
    """Both ways the built-in policies run the LSTM over segments with episode starts inside
    (recurrent.lstm_over_episodes), forced regardless of how many pieces there are."""
    limit = float("inf") if request.param == "one_call" else 0.0
    monkeypatch.setattr(recurrent, "MAX_PIECE_ROWS_PER_SEGMENT", limit)
    return request.param


def rollout(policy, obs: torch.Tensor, state, starts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What the trainer does at rollout time: one step at a time, zeroing finished slots (the
    base class's reference loop, which the built-ins override with fused LSTM calls)."""
    return Policy.forward_sequence(policy, obs, state, starts)


def nonzero_state(policy, batch: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    zeros = policy.initial_state(batch, "cpu")
    return tuple(torch.randn(s.shape, generator=generator) for s in zeros)


@pytest.mark.usefixtures("lstm_path")
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


@pytest.mark.usefixtures("lstm_path")
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


def gradients(policy, run, mix: torch.Tensor) -> dict[str, torch.Tensor]:
    """Weight gradients of a fixed function of the logits and values that `run()` returns."""
    policy.zero_grad()
    logits, values = run()
    ((logits * mix).sum() + (values ** 2).sum()).backward()
    return {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}


def many_starts() -> torch.Tensor:
    """Several starts in one segment, a start at the last step, one at step 0, a segment
    without any."""
    starts = torch.zeros(4, HORIZON, dtype=torch.bool)
    starts[0, 1] = starts[0, 3] = starts[0, HORIZON - 1] = True
    starts[2, 0] = starts[2, 2] = True
    starts[3, HORIZON - 1] = True
    return starts


@pytest.mark.usefixtures("lstm_path")
@pytest.mark.parametrize("name", ["fast", "latent_attn_tiny"])
def test_update_gradients_match_stepwise_rollout(name: str) -> None:
    """The update pass back-propagates like the step loop."""
    policy = build(name, 7)
    obs = random_obs((4, HORIZON), 7, seed=19)
    state = nonzero_state(policy, 4, seed=20)
    starts = many_starts()
    mix = torch.randn(len(policy.action_names), generator=torch.Generator().manual_seed(21))
    expected = gradients(policy, lambda: rollout(policy, obs, state, starts), mix)
    got = gradients(policy, lambda: policy.forward_sequence(obs, state, starts), mix)
    assert expected.keys() == got.keys() and len(got) > 0
    for n in expected:
        torch.testing.assert_close(got[n], expected[n], atol=1e-4, rtol=1e-4, msg=n)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.usefixtures("lstm_path")
def test_cuda_update_pass_matches_cpu(monkeypatch) -> None:
    """cuDNN's LSTM over the same pieces gives the CPU's outputs and gradients (TF32 off, so
    that the comparison is of the algorithm, not of reduced-precision matmuls)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    assert not torch.backends.cuda.matmul.allow_tf32  # torch's default; the project keeps it
    policy = build("fast", 7)
    obs = random_obs((4, HORIZON), 7, seed=22)
    state = nonzero_state(policy, 4, seed=23)
    starts = many_starts()
    mix = torch.randn(len(policy.action_names), generator=torch.Generator().manual_seed(24))
    expected = gradients(policy, lambda: policy.forward_sequence(obs, state, starts), mix)
    with torch.no_grad():
        cpu_out = policy.forward_sequence(obs, state, starts)
    policy.cuda()
    cuda = [tensor.cuda() for tensor in (obs, *state, starts, mix)]
    with torch.no_grad():
        cuda_out = policy.forward_sequence(cuda[0], tuple(cuda[1:3]), cuda[3])
    got = gradients(policy, lambda: policy.forward_sequence(cuda[0], tuple(cuda[1:3]), cuda[3]), cuda[4])
    for a, b in zip(cuda_out, cpu_out):
        torch.testing.assert_close(a.cpu(), b, atol=1e-4, rtol=1e-4)
    for n in expected:
        torch.testing.assert_close(got[n].cpu(), expected[n], atol=1e-4, rtol=1e-4, msg=n)


@pytest.mark.parametrize("kwargs", [{"bidirectional": True, "batch_first": True}, {"batch_first": False}])
def test_lstm_over_episodes_refuses_an_lstm_it_cannot_split(kwargs) -> None:
    """The pieces rely on a causal, batch-first LSTM; any other is refused with what it needs."""
    lstm = torch.nn.LSTM(4, 4, **kwargs)
    state = (torch.zeros(2, 1, 4), torch.zeros(2, 1, 4))
    with pytest.raises(ValueError, match="unidirectional, batch_first nn.LSTM"):
        recurrent.lstm_over_episodes(lstm, torch.zeros(2, 3, 4), state, torch.zeros(2, 3, dtype=torch.bool))
