"""A user's own module (examples/my_policy.py) goes through the same interface as the built-ins:
built by name, stepped, trained on segments, remapped and rebuilt from its spec."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from policy_testing import ACTIONS, FEATURES, random_obs, registry

from heartgrid.config.run import PolicyConfig
from heartgrid.policies import Policy, make_policy, policy_from_spec

USER_POLICY = "examples.my_policy:MyPolicy"


@pytest.fixture(autouse=True)
def repo_root_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))


def build_user_policy() -> Policy:
    torch.manual_seed(0)
    config = PolicyConfig(name=USER_POLICY, hidden_size=32, kwargs={"width": 48})
    return make_policy(config, FEATURES, ACTIONS, (len(FEATURES), 7, 7))


def test_user_policy_steps_and_trains_through_the_interface() -> None:
    policy = build_user_policy()
    assert type(policy).__name__ == "MyPolicy" and policy.encoder[1].out_features == 48
    logits, values, state = policy(random_obs((4,), 7, seed=31), policy.initial_state(4, "cpu"))
    assert logits.shape == (4, len(ACTIONS)) and values.shape == (4,) and state[0].shape == (4, 32)

    # A few update steps on segments with episode starts: the loss (behaviour cloning of
    # action 3 plus a value regression to 1) goes down.
    obs = random_obs((4, 5), 7, seed=32)
    starts = torch.zeros(4, 5, dtype=torch.bool)
    starts[:, 0] = starts[1, 3] = True
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        logits, values = policy.forward_sequence(obs, policy.initial_state(4, "cpu"), starts)
        loss = -logits.log_softmax(-1)[..., 3].mean() + (values - 1).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_user_policy_remaps_and_round_trips() -> None:
    policy = build_user_policy()
    obs = random_obs((3,), 7, seed=33)
    with torch.no_grad():
        before = policy(obs, policy.initial_state(3, "cpu"))[0]
    policy.adapt(FEATURES, ACTIONS[::-1])
    with torch.no_grad():
        after = policy(obs, policy.initial_state(3, "cpu"))[0]
    torch.testing.assert_close(after, before.flip(-1), atol=1e-6, rtol=0)

    spec = json.loads(json.dumps(policy.spec()))
    assert spec["class"] == "examples.my_policy:MyPolicy"
    assert spec["config"]["kwargs"] == {"width": 48}
    rebuilt = policy_from_spec(spec)
    rebuilt.load_state_dict(policy.state_dict())
    rebuilt.adapt(FEATURES, ACTIONS[::-1])
    with torch.no_grad():
        assert torch.equal(rebuilt(obs, rebuilt.initial_state(3, "cpu"))[0], after)

    # MyPolicy does not implement grow_feature_inputs: learning a new feature is refused.
    with_gold = registry(FEATURES.names + ["inv:gold"])
    with pytest.raises(ValueError, match="cannot learn new features"):
        policy.adapt(with_gold, ACTIONS, learn_new_features=True)
    assert policy.inputs.names == FEATURES.names  # refused before anything changed


def test_a_module_without_the_interface_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    module = type(sys)("plain_user_module")
    module.Plain = torch.nn.Linear
    monkeypatch.setitem(sys.modules, "plain_user_module", module)
    shape = (len(FEATURES), 7, 7)
    missing = r"lacks \['initial_state', 'forward_sequence', 'spec', 'adapt'\]"
    with pytest.raises(ValueError, match=missing):
        make_policy(PolicyConfig(name="plain_user_module:Plain"), FEATURES, ACTIONS, shape)
    with pytest.raises(ValueError, match="cannot import module 'no_such_module'"):
        make_policy(PolicyConfig(name="no_such_module:X"), FEATURES, ACTIONS, shape)


def test_a_user_policy_taking_any_kwargs_still_gets_them() -> None:
    from heartgrid.policies.registry import accepted_kwargs

    class Greedy(torch.nn.Module):
        def __init__(self, config, features, action_names, obs_shape, **options):
            super().__init__()

    assert accepted_kwargs(Greedy) == (set(), True)
