"""Every built-in policy: output shapes on 7x7 and 11x11, parameter counts, seeding, gradients,
and the messages for bad input."""

from __future__ import annotations

import pytest
import torch
from policy_testing import ACTIONS, FEATURES, POLICY_NAMES, build, random_obs

from heartgrid.config.run import PolicyConfig
from heartgrid.policies import make_policy
from heartgrid.policies.fast import conv_geometry


@pytest.mark.parametrize("size", [7, 11])
@pytest.mark.parametrize("name", POLICY_NAMES)
def test_forward_and_sequence_shapes(name: str, size: int) -> None:
    policy = build(name, size)
    state = policy.initial_state(6, "cpu")
    assert [tuple(s.shape) for s in state] == [(6, 2, 128), (6, 2, 128)]

    logits, values, new_state = policy(random_obs((6,), size, seed=1), state)
    assert logits.shape == (6, len(ACTIONS)) and values.shape == (6,)
    assert [tuple(s.shape) for s in new_state] == [(6, 2, 128), (6, 2, 128)]
    assert torch.isfinite(logits).all() and torch.isfinite(values).all()

    starts = torch.zeros(3, 4, dtype=torch.bool)
    starts[1, 2] = True
    seq_obs = random_obs((3, 4), size, seed=2)
    seq_state = policy.initial_state(3, "cpu")
    seq_logits, seq_values = policy.forward_sequence(seq_obs, seq_state, starts)
    assert seq_logits.shape == (3, 4, len(ACTIONS)) and seq_values.shape == (3, 4)


def test_parameter_counts() -> None:
    counts = {name: build(name, 11).num_parameters() for name in POLICY_NAMES}
    print(f"parameters at 11x11, {len(FEATURES)} features, {len(ACTIONS)} actions: {counts}")
    # fast = conv 33,664 + conv 36,928 + linear 8,320 + linear 16,512 + LSTM 264,192
    #        + critic 133,121 + actor 66,048 + W 8,192 + action embeddings 19 x (16 + 1)
    assert counts["fast"] == 567_300  # "about 0.58M" in the SPEC
    # conv_lstm: fast without W and the 16-dim embeddings, with a 512-wide row per action instead
    assert counts == {
        "conv_lstm": 567_300 - 8_192 - 19 * 16 + 19 * 512,
        "fast": 567_300,
        "latent_attn_tiny": 515_948,
        "latent_attn_small": 515_230,
        "latent_attn_med": 549_306,
    }
    # Attention encoders do not depend on the window; fast's flatten does only beyond 13x13.
    assert build("latent_attn_med", 7).num_parameters() == counts["latent_attn_med"]
    assert build("fast", 15).num_parameters() == counts["fast"] + 64 * 3 * 128


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (3, ((3, 3), (1, 1), (1, 1))),
        (7, ((5, 5), (1, 1), (1, 1))),
        (9, ((5, 5), (2, 2), (1, 1))),
        (11, ((5, 5), (3, 3), (1, 1))),
        (15, ((5, 5), (3, 3), (2, 2))),
    ],
)
def test_fast_conv_geometry(size: int, expected: tuple) -> None:
    assert conv_geometry(size, size) == expected


def test_fast_builds_for_every_window() -> None:
    for height, width in [(3, 3), (5, 5), (13, 13), (3, 15), (15, 7)]:
        torch.manual_seed(0)
        shape = (len(FEATURES), height, width)
        policy = make_policy(PolicyConfig(name="fast"), FEATURES, ACTIONS, shape)
        obs = torch.zeros(2, len(FEATURES), height, width, dtype=torch.uint8)
        logits, _, _ = policy(obs, policy.initial_state(2, "cpu"))
        assert logits.shape == (2, len(ACTIONS))


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_seed_fixes_weights_and_outputs(name: str) -> None:
    obs = random_obs((4,), 7, seed=3)
    a, b, c = build(name, 7, seed=5), build(name, 7, seed=5), build(name, 7, seed=6)
    for key, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[key]), key
    assert not torch.equal(a.state_dict()["lstm.weight_hh_l0"], c.state_dict()["lstm.weight_hh_l0"])
    out_a = a(obs, a.initial_state(4, "cpu"))
    out_b = b(obs, b.initial_state(4, "cpu"))
    assert torch.equal(out_a[0], out_b[0]) and torch.equal(out_a[1], out_b[1])


def test_initialisation_follows_the_spec() -> None:
    policy = build("fast", 11)
    assert torch.all(policy.lstm.bias_ih_l0 == 1) and torch.all(policy.lstm.bias_hh_l1 == 1)
    assert torch.all(policy.fc1.bias == 0) and torch.all(policy.critic[0].bias == 0)
    # Orthogonal with gain 1 (critic, 128 -> 1024: orthonormal columns) and sqrt(2) (before ReLU).
    w = policy.critic[0].weight
    torch.testing.assert_close(w.T @ w, torch.eye(128), atol=1e-4, rtol=0)
    w = policy.fc2.weight
    torch.testing.assert_close(w @ w.T, 2 * torch.eye(128), atol=1e-4, rtol=0)
    # Fresh action embeddings are small, so the initial policy is close to uniform.
    logits, _, _ = policy(random_obs((8,), 11, seed=4), policy.initial_state(8, "cpu"))
    probs = logits.softmax(-1)
    assert probs.max() < 2.0 / len(ACTIONS) and probs.min() > 0.5 / len(ACTIONS)


@pytest.mark.parametrize("with_reset", [False, True])
@pytest.mark.parametrize("name", POLICY_NAMES)
def test_gradients_reach_every_parameter(name: str, with_reset: bool) -> None:
    policy = build(name, 7)
    starts = torch.zeros(2, 5, dtype=torch.bool)
    starts[0, 3] = with_reset
    obs = random_obs((2, 5), 7, seed=6)
    logits, values = policy.forward_sequence(obs, policy.initial_state(2, "cpu"), starts)
    # A PPO-shaped loss: log-probabilities of some actions, entropy and a value error.
    logprobs = logits.log_softmax(-1)
    entropy = -(logprobs.exp() * logprobs).sum(-1)
    loss = -logprobs[..., 1].mean() - 0.01 * entropy.mean() + (values - 1).pow(2).mean()
    loss.backward()
    for pname, param in policy.named_parameters():
        assert param.grad is not None, pname
        assert torch.isfinite(param.grad).all(), pname
        assert param.grad.abs().sum() > 0, pname


def test_bad_input_is_named() -> None:
    policy = build("fast", 11)
    shape = (len(FEATURES), 11, 11)
    state = policy.initial_state(2, "cpu")
    with pytest.raises(ValueError, match="do not match the bound feature registry"):
        policy(torch.zeros(2, 5, 11, 11, dtype=torch.uint8), state)
    with pytest.raises(ValueError, match="built for 11x11"):
        policy(torch.zeros(2, len(FEATURES), 7, 7, dtype=torch.uint8), state)
    with pytest.raises(ValueError, match=r"episode_starts \[S, T\]"):
        wrong_starts = torch.zeros(2, 4, dtype=torch.bool)
        policy.forward_sequence(random_obs((2, 3), 11, 0), state, wrong_starts)
    with pytest.raises(ValueError, match="unknown policy 'fats'"):
        make_policy(PolicyConfig(name="fats"), FEATURES, ACTIONS, shape)
    with pytest.raises(ValueError, match=r"kwargs \['depth'\] are not accepted by policy 'fast'"):
        make_policy(PolicyConfig(name="fast", kwargs={"depth": 3}), FEATURES, ACTIONS, shape)
    with pytest.raises(ValueError, match="obs_shape has 20 feature planes but the registry has 21"):
        make_policy(PolicyConfig(name="fast"), FEATURES, ACTIONS, (20, 11, 11))
    with pytest.raises(ValueError, match="repeated: \\['noop_0'\\]"):
        make_policy(PolicyConfig(name="fast"), FEATURES, ["noop_0", "noop_0"], shape)
    with pytest.raises(ValueError, match="has no torch.nn.Module class named 'Nope'"):
        make_policy(PolicyConfig(name="heartgrid.policies.fast:Nope"), FEATURES, ACTIONS, shape)
