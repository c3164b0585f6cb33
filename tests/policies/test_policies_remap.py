"""A policy survives changed registries: actions and features are matched by name, and the
spec plus the weights rebuild the same policy (through JSON and safetensors)."""

from __future__ import annotations

import json

import pytest
import torch
from policy_testing import ACTIONS, FEATURES, POLICY_NAMES, build, random_obs, registry
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from heartgrid.policies import policy_from_spec


def step(policy, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        logits, values, _ = policy(obs, policy.initial_state(obs.shape[0], "cpu"))
    return logits, values


@pytest.mark.parametrize("name", ["fast", "latent_attn_small"])
def test_actions_are_matched_by_name(name: str) -> None:
    policy = build(name, 7)
    obs = random_obs((4,), 7, seed=21)
    before, values_before = step(policy, obs)
    size_before = policy.num_parameters()

    # A reordered action list without swap_0 and with an action the policy never saw.
    changed = list(reversed(ACTIONS[:-1])) + ["move_cardinal_2"]
    policy.adapt(FEATURES, changed)
    after, values_after = step(policy, obs)
    assert after.shape == (4, len(changed)) and policy.action_names == changed
    for j, action in enumerate(changed[:-1]):
        # Same weights; the matmul over a reordered table may round differently in the last bit.
        torch.testing.assert_close(after[:, j], before[:, ACTIONS.index(action)], atol=1e-6, rtol=0)
    assert torch.equal(values_after, values_before)
    assert policy.num_parameters() == size_before + 16 + 1  # one embedding row and one bias

    # Back to the original list: swap_0 kept its weights while it was not offered.
    policy.adapt(FEATURES, ACTIONS)
    torch.testing.assert_close(step(policy, obs)[0], before, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_moved_features_are_remapped(name: str) -> None:
    policy = build(name, 7)
    obs = random_obs((4,), 7, seed=22)
    before = step(policy, obs)

    permutation = torch.randperm(len(FEATURES), generator=torch.Generator().manual_seed(0))
    moved = registry([FEATURES.names[i] for i in permutation])
    policy.adapt(moved, ACTIONS)
    after = step(policy, obs[:, permutation])
    assert torch.equal(after[0], before[0]) and torch.equal(after[1], before[1])


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_unknown_features_are_ignored_and_missing_ones_read_empty(name: str) -> None:
    policy = build(name, 7)
    obs = random_obs((4,), 7, seed=23)
    before = step(policy, obs)

    # A newer engine: two features the policy never saw, one inserted in the middle.
    names = FEATURES.names[:5] + ["inv:gold"] + FEATURES.names[5:] + ["agent:energy"]
    newer = registry(names)
    policy.adapt(newer, ACTIONS)
    assert policy.inputs.ignored == ["inv:gold", "agent:energy"]
    newer_obs = random_obs((4,), 7, seed=24, num_features=len(names))
    newer_obs[:, [names.index(n) for n in FEATURES.names]] = obs
    after = step(policy, newer_obs)
    assert torch.equal(after[0], before[0]) and torch.equal(after[1], before[1])

    # An older engine without agent:color: that plane reads as empty.
    older_names = [n for n in FEATURES.names if n != "agent:color"]
    policy.adapt(registry(older_names), ACTIONS)
    assert policy.inputs.missing == ["agent:color"]
    color = FEATURES["agent:color"].id
    blanked = obs.clone()
    blanked[:, color] = 0
    policy_fresh = build(name, 7)
    expected = step(policy_fresh, blanked)
    got = step(policy, obs[:, [FEATURES[n].id for n in older_names]])
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_fast_learns_new_features_starting_from_zero_weights() -> None:
    policy = build("fast", 7)
    obs = random_obs((4,), 7, seed=25)
    before = step(policy, obs)
    names = FEATURES.names + ["inv:gold"]
    policy.adapt(registry(names), ACTIONS, learn_new_features=True)
    assert policy.inputs.names == names and policy.conv1.weight.shape[1] == len(names)
    newer_obs = torch.cat([obs, random_obs((4,), 7, seed=26, num_features=1)], dim=1)
    after = step(policy, newer_obs)
    torch.testing.assert_close(after[0], before[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(after[1], before[1], atol=1e-6, rtol=0)

    logits, values, _ = policy(newer_obs, policy.initial_state(4, "cpu"))
    values.sum().backward()
    assert policy.conv1.weight.grad[:, -1].abs().sum() > 0  # the new input is learnable


def test_attention_learns_new_features_as_tokens() -> None:
    policy = build("latent_attn_tiny", 7)
    rows = policy.tokenizer.feature_embeddings.shape[0]
    policy.adapt(registry(FEATURES.names + ["inv:gold"]), ACTIONS, learn_new_features=True)
    assert policy.tokenizer.feature_embeddings.shape[0] == rows + 1
    obs = random_obs((4,), 7, seed=27, num_features=len(FEATURES) + 1)
    _, values, _ = policy(obs, policy.initial_state(4, "cpu"))
    values.sum().backward()
    assert policy.tokenizer.feature_embeddings.grad[-1].abs().sum() > 0


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_spec_and_weights_rebuild_the_same_policy(name: str) -> None:
    policy = build(name, 7, seed=3)
    # Bind to a changed world first, growing both tables, so the spec must carry them.
    names = FEATURES.names[::-1]
    if name != "fast":
        names = names + ["inv:gold"]
    world = registry(names)
    actions = ACTIONS[2:] + ["change_color_0"]
    policy.adapt(world, actions, learn_new_features=True)
    obs = random_obs((4,), 7, seed=28, num_features=len(world))
    expected = step(policy, obs)

    spec = json.loads(json.dumps(policy.spec()))
    weights = load_safetensors(save_safetensors(policy.state_dict()))
    torch.manual_seed(99)  # the rebuilt policy's fresh init must not matter
    rebuilt = policy_from_spec(spec)
    rebuilt.load_state_dict(weights)
    rebuilt.adapt(world, actions)
    got = step(rebuilt, obs)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert rebuilt.spec() == policy.spec()
    assert spec["name"] == name and spec["bound"] == {"features": names, "actions": actions}
    assert spec["action_names"] == ACTIONS + ["change_color_0"]


def test_spec_errors_are_named() -> None:
    with pytest.raises(ValueError, match="policy spec lacks the key 'features'"):
        spec = {"config": {"name": "fast"}, "action_names": ACTIONS, "obs_shape": [21, 7, 7]}
        policy_from_spec(spec)


def test_inputs_are_the_planes_over_their_normalisations_in_the_engines_layout() -> None:
    """FeatureInput gives obs.float() / normalisation bit for bit, keeps the engine's
    channels-last layout (the convs read it as such), and never writes into a float input."""
    from heartgrid.policies.inputs import FeatureInput

    inputs = FeatureInput(FEATURES)
    obs = random_obs((3,), 7, seed=5).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # as the engine's
    norms = torch.tensor([f.normalization for f in FEATURES]).view(1, -1, 1, 1)
    planes = inputs(obs)
    assert planes.dtype == torch.float32 and planes.stride() == obs.stride()
    assert torch.equal(planes, obs.float() * (1.0 / norms))
    floats = obs.float()
    assert torch.equal(inputs(floats), planes) and torch.equal(floats, obs.float())  # not scaled in place
    # Bound to a reordered registry: the planes are picked by name, then scaled.
    reordered = registry(list(reversed(FEATURES.names)))
    inputs.bind(reordered, learn_new=False)
    assert torch.equal(inputs(obs.flip(1)), planes)
