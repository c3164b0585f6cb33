"""The core options every built-in takes (`policy.kwargs`: action_head, lstm_bias, memory), the
default `conv_lstm`, and the finding behind it: the reference core is saturated."""

from __future__ import annotations

import pytest
import torch
from policy_testing import ACTIONS, build, random_obs

from heartgrid.engine.batched import BatchedEngine
from heartgrid.policies import LinearActionHead, make_policy
from heartgrid.policies.actions import ActionEmbeddingHead
from heartgrid.policies.base import Policy
from heartgrid.policies.registry import policy_from_spec
from heartgrid.recipes.arena import arena_game


def test_default_is_fast_with_a_linear_head_and_zero_lstm_biases() -> None:
    default, reference = build("conv_lstm"), build("fast")
    assert isinstance(default.action_head, LinearActionHead)
    assert isinstance(reference.action_head, ActionEmbeddingHead)
    for name, param in default.lstm.named_parameters():
        if name.startswith("bias"):
            assert torch.all(param == 0), name
    # Same encoder and core shapes as the reference.
    shapes = {n: p.shape for n, p in reference.named_parameters() if not n.startswith("action_head")}
    assert shapes == {n: p.shape for n, p in default.named_parameters() if not n.startswith("action_head")}
    # A fresh linear head (gain 0.01) starts near uniform.
    logits, _, _ = default(random_obs((8,), 11, seed=4), default.initial_state(8, "cpu"))
    probs = logits.softmax(-1)
    assert probs.max() < 1.2 / len(ACTIONS) and probs.min() > 0.8 / len(ACTIONS)


def test_kwargs_replace_the_policy_defaults_and_are_checked() -> None:
    assert isinstance(build("fast", action_head="linear").action_head, LinearActionHead)
    assert isinstance(build("conv_lstm", action_head="bilinear").action_head, ActionEmbeddingHead)
    assert torch.all(build("conv_lstm", lstm_bias=1.0).lstm.bias_hh_l1 == 1)
    assert isinstance(build("latent_attn_tiny", action_head="linear").action_head, LinearActionHead)
    with pytest.raises(ValueError, match=r"action_head must be one of \['bilinear', 'linear'\]"):
        build("conv_lstm", action_head="softmax")
    with pytest.raises(ValueError, match=r"memory must be one of \['lstm', 'none'\]"):
        build("fast", memory="gru")


def test_bilinear_head_is_bounded_and_linear_head_is_not() -> None:
    hidden = 100.0 * torch.randn(4, 512)
    bilinear = ActionEmbeddingHead(512, ACTIONS)
    assert (bilinear(hidden) - bilinear.bias).abs().max() <= 1.0
    linear = LinearActionHead(512, ACTIONS)
    assert (linear(hidden) - linear.bias).abs().max() > 1.0
    weight, bias = linear.active_rows()
    torch.testing.assert_close(linear(hidden), hidden @ weight.T + bias)


@pytest.mark.parametrize("name", ["conv_lstm", "latent_attn_tiny"])
def test_feed_forward_core(name: str) -> None:
    policy = build(name, 7, memory="none")
    assert policy.lstm is None and not any("lstm" in n for n, _ in policy.named_parameters())
    state = policy.initial_state(3, "cpu")
    assert [tuple(s.shape) for s in state] == [(3, 1)]
    obs = random_obs((3, 4), 7, seed=3)
    starts = torch.zeros(3, 4, dtype=torch.bool)
    starts[1, 2] = True
    logits, values = policy.forward_sequence(obs, state, starts)
    loop_logits, loop_values = Policy.forward_sequence(policy, obs, state, starts)
    torch.testing.assert_close(logits, loop_logits)
    torch.testing.assert_close(values, loop_values)


def test_spec_records_the_core_and_rebuilds_it() -> None:
    policy = build("fast", 7, action_head="linear", lstm_bias=0.0)
    spec = policy.spec()
    assert spec["core"] == {"action_head": "linear", "lstm_bias": 0.0, "memory": "lstm"}
    rebuilt = policy_from_spec(spec)
    rebuilt.load_state_dict(policy.state_dict())
    assert isinstance(rebuilt.action_head, LinearActionHead)
    obs, state = random_obs((2,), 7, seed=1), policy.initial_state(2, "cpu")
    torch.testing.assert_close(rebuilt(obs, state)[0], policy(obs, state)[0])
    # The recorded core wins over the class's defaults (should they change): a conv_lstm spec
    # that says bilinear rebuilds bilinear although its config has no kwargs.
    default = build("conv_lstm", 7)
    spec = {**default.spec(), "core": {"action_head": "bilinear", "lstm_bias": 0.0, "memory": "lstm"}}
    assert spec["config"]["kwargs"] == {}
    assert isinstance(policy_from_spec(spec).action_head, ActionEmbeddingHead)


def core_spread(name: str) -> tuple[float, float]:
    """(spread across a batch of the last LSTM layer's output, of the values): standard
    deviation over 48 agents of two arena envs after 20 random steps, averaged over units."""
    torch.manual_seed(0)
    engine = BatchedEngine(arena_game(easy=True, shaped=True), num_envs=2, seed=0)
    engine.reset()
    policy = make_policy(build(name).config, engine.features, engine.action_space.names, engine.obs_shape)
    generator = torch.Generator().manual_seed(0)
    state = policy.initial_state(engine.num_slots, "cpu")
    with torch.no_grad():
        for _ in range(20):
            _, values, state = policy(engine.obs, state)
            engine.step(torch.randint(0, len(engine.action_space), (engine.num_slots,), generator=generator))
    return state[0][:, -1].std(0).mean().item(), values.std().item()


def test_reference_core_is_saturated_and_the_default_is_not() -> None:
    # Every LSTM bias at 1 (2 on each gate) fills the cell whatever the observation: the
    # reference core's output barely differs between agents, so neither head can tell states
    # apart at the start of training (docs/learning.md).
    reference_h, reference_v = core_spread("fast")
    default_h, default_v = core_spread("conv_lstm")
    assert reference_h < 2e-3 and reference_v < 1e-3
    assert default_h > 5 * reference_h and default_v > 5 * reference_v


def test_a_misspelled_core_kwarg_names_the_accepted_ones() -> None:
    # conv_lstm's __init__ passes **kwargs on to the core: the check follows them there.
    with pytest.raises(ValueError, match=r"\['action_haed'\] are not accepted by policy 'conv_lstm'; "
                                         r"it accepts \['action_head', 'lstm_bias', 'memory'\]"):
        build("conv_lstm", action_haed="linear")
    with pytest.raises(ValueError, match=r"it accepts \['action_head', 'lstm_bias', 'max_tokens', 'memory'\]"):
        build("latent_attn_tiny", width=3)
