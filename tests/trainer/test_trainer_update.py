"""The PPO update's switches (SPEC §2.1) each do what they say, checked on the fake engine:
gradient accumulation, value target, advantage normalisation, prioritized weights, target KL."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from trainer_fakes import DEVICES, make_trainer, tiny_config

from heartgrid.policies.distribution import logprobs_and_entropy
from heartgrid.trainer import ppo
from heartgrid.trainer.losses import normalize
from heartgrid.trainer.stats import StatsAccumulator


def filled_trainer(**trainer_fields):
    """A trainer with a full experience buffer (one rollout), ready for `update`."""
    fields = dict(max_grad_norm=1e9)  # no clipping, so gradients can be compared exactly
    fields.update(trainer_fields)
    trainer = make_trainer(tiny_config(**fields))
    trainer.rollout()
    return trainer


def update(trainer):
    ppo.ppo_update(trainer.policy, trainer.optimizer, trainer.experience, trainer.sampler,
                   trainer.config.trainer, trainer.hyper, 0.0, trainer.stats)


def record_steps(trainer):
    """Gradients of every parameter at each optimizer step."""
    steps = []
    original = trainer.optimizer.step

    def step(*args, **kwargs):
        steps.append([p.grad.clone() for p in trainer.policy.parameters()])
        return original(*args, **kwargs)

    trainer.optimizer.step = step
    return steps


def record_calls(monkeypatch, name):
    """Record the segments (or keyword arguments) of each call of ppo.<name>."""
    calls = []
    original = getattr(ppo, name)

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    monkeypatch.setattr(ppo, name, spy)
    return calls


def one_segment_trainer(**trainer_fields):
    """One agent, one segment of 2 steps, γ = 0.5, λ = 1, no normalisation; after a rollout,
    rewards (1, 1), no dones, values (0, 0) and a bootstrap of 4. Returns (trainer, experience,
    segments [0])."""
    config = tiny_config(num_envs=1, num_agents=1, bptt=2, passes=1, minibatch_segments=1, gamma=0.5,
                         gae_lambda=1.0, advantage_norm="off", **trainer_fields)
    trainer = make_trainer(config)
    trainer.rollout()
    exp = trainer.experience
    exp.rewards.copy_(torch.tensor([[1.0, 1.0]]))
    exp.dones.zero_()
    exp.values.copy_(torch.tensor([[0.0, 0.0]]))
    exp.next_values.copy_(torch.tensor([4.0]))
    return trainer, exp, torch.tensor([0])


def loss_gradient(trainer, policy, segments):
    policy.zero_grad()
    loss = ppo.minibatch_loss(policy, trainer.experience, segments, None, (0.0, 1.0),
                              trainer.config.trainer, trainer.hyper)
    loss.total.backward()
    return [p.grad.clone() for p in policy.parameters()]


# ---- gradient accumulation ---------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["accumulate", "legacy"])
def test_gradient_accumulation(monkeypatch, mode, device):
    """One minibatch of 4 segments in 2 micro-batches. `accumulate`: the step applies the
    gradient of the whole minibatch. `legacy`: only the last micro-batch's (unscaled)."""
    trainer = filled_trainer(passes=1, minibatch_segments=4, micro_batch_size=2 * 4,
                             grad_accumulation=mode, advantage_norm="off", device=device)
    start_policy = copy.deepcopy(trainer.policy)
    micro_calls = record_calls(monkeypatch, "minibatch_loss")
    steps = record_steps(trainer)
    update(trainer)

    assert len(steps) == 1 and len(micro_calls) == 2
    first, last = micro_calls[0][0][2], micro_calls[1][0][2]
    everything = torch.cat([first, last])
    assert sorted(everything.tolist()) == [0, 1, 2, 3]
    expected = loss_gradient(trainer, start_policy, everything if mode == "accumulate" else last)
    for got, want in zip(steps[0], expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    other = loss_gradient(trainer, start_policy, last if mode == "accumulate" else everything)
    assert any(not torch.allclose(g, o, rtol=1e-3) for g, o in zip(steps[0], other))


@pytest.mark.parametrize("advantages", ["vtrace", "gae"])
@pytest.mark.parametrize("advantage_norm", ["minibatch", "global", "off"])
def test_accumulated_micro_batches_give_the_whole_minibatch_gradient(advantage_norm, advantages):
    """Whatever the normalisation: 4 segments in 2 micro-batches step with the gradient that one
    pass over the 4 would give (same segments: the same sampler state on both sides)."""
    fields = dict(passes=1, minibatch_segments=4, advantage_norm=advantage_norm, advantages=advantages)
    whole = filled_trainer(**fields)
    split = filled_trainer(micro_batch_size=2 * 4, **fields)
    gradients = []
    for trainer in (whole, split):
        steps = record_steps(trainer)
        update(trainer)
        gradients.append(steps[0])
    for got, want in zip(gradients[1], gradients[0]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


# ---- value target --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["rollout", "refreshed"])
def test_value_target(monkeypatch, mode):
    """Advantages, returns (= advantages + values) and value clipping are all built on the same
    values. The first time a segment is used these are its rollout values in both modes; in
    the second epoch, `refreshed` uses the values the network computed for the segment in the
    first epoch, `rollout` still the rollout values."""
    trainer = filled_trainer(passes=1, minibatch_segments=1, update_epochs=2, value_target=mode,
                             optimizer={"learning_rate": 0.01})
    advantages_calls = record_calls(monkeypatch, "compute_advantages")
    loss_calls = record_calls(monkeypatch, "ppo_loss")
    update(trainer)

    per_minibatch = advantages_calls[1:]  # the first call is the whole batch at ratio 1
    assert len(per_minibatch) == len(loss_calls) == 2 * trainer.segments
    rollout_values = trainer.experience.values
    seen: dict[int, torch.Tensor] = {}
    first_segment = int(per_minibatch[0][0][1][0])  # trained on before any optimizer step
    for (adv_args, _, advantages), (_, loss_kwargs, _) in zip(per_minibatch, loss_calls):
        segment, values = int(adv_args[1][0]), adv_args[2]
        expected = rollout_values[[segment]] if segment not in seen or mode == "rollout" else seen[segment]
        assert torch.equal(values, expected)
        assert torch.equal(loss_kwargs["returns"], advantages + expected)
        assert torch.equal(loss_kwargs["old_values"], expected)
        if mode == "refreshed" and segment in seen and segment != first_segment:
            assert not torch.allclose(values, rollout_values[[segment]])
        seen[segment] = loss_kwargs["new_values"].detach()
    assert len(seen) == trainer.segments


@pytest.mark.parametrize("mode", ["rollout", "refreshed"])
def test_value_target_numbers(monkeypatch, mode):
    """One segment of two steps, γ = 0.5, λ = 1, ratio 1, rewards 1 and 1, bootstrap value 4;
    rollout values (0, 0), values refreshed by an earlier minibatch (1, 2).

        rollout:    δ = (1 + 0.5·0 − 0, 1 + 0.5·4 − 0) = (1, 3)  A = (1 + 0.5·3, 3) = (2.5, 3)
        refreshed:  δ = (1 + 0.5·2 − 1, 1 + 0.5·4 − 2) = (1, 1)  A = (1 + 0.5·1, 1) = (1.5, 1)

    With λ = 1 the returns A + V are the discounted rewards plus bootstrap, (2.5, 3), whichever
    values; returns of rollout advantages + refreshed values would be (3.5, 5)."""
    trainer, exp, segments = one_segment_trainer(value_target=mode)
    exp.target_values.copy_(torch.tensor([[1.0, 2.0]]))
    with torch.no_grad():  # the rollout policy is the current one: every ratio is exactly 1
        logits, _ = trainer.policy.forward_sequence(exp.obs, exp.start_state, exp.episode_starts)
        exp.logprobs.copy_(logprobs_and_entropy(logits, exp.actions)[0])
    loss_calls = record_calls(monkeypatch, "ppo_loss")
    ppo.minibatch_loss(trainer.policy, exp, segments, None, (0.0, 1.0), trainer.config.trainer, trainer.hyper)

    kwargs = loss_calls[0][1]
    values = [[0.0, 0.0]] if mode == "rollout" else [[1.0, 2.0]]
    advantages = [[2.5, 3.0]] if mode == "rollout" else [[1.5, 1.0]]
    assert kwargs["old_values"].tolist() == values
    assert kwargs["advantages"].tolist() == advantages
    assert kwargs["returns"].tolist() == [[2.5, 3.0]]
    # `refreshed` remembers the values just computed for the next use of the segment.
    remembered = kwargs["new_values"].detach() if mode == "refreshed" else torch.tensor([[1.0, 2.0]])
    assert torch.equal(exp.target_values, remembered)


# ---- advantage normalisation and prioritized weights ------------------------------------


@pytest.mark.parametrize("mode", ["minibatch", "global", "off"])
def test_advantage_normalisation(monkeypatch, mode):
    trainer = filled_trainer(passes=2, minibatch_segments=2, advantage_norm=mode)
    advantages_calls = record_calls(monkeypatch, "compute_advantages")
    loss_calls = record_calls(monkeypatch, "ppo_loss")
    update(trainer)

    batch_advantages = advantages_calls[0][2]
    for (_, _, raw), (_, kwargs, _) in zip(advantages_calls[1:], loss_calls):
        if mode == "minibatch":
            expected = normalize(raw, raw.mean(), raw.std())
        elif mode == "global":
            expected = normalize(raw, batch_advantages.mean(), batch_advantages.std())
        else:
            expected = raw
        torch.testing.assert_close(kwargs["advantages"], expected)
        if mode == "minibatch":
            assert abs(kwargs["advantages"].mean().item()) < 1e-5


def test_prioritized_weights_multiply_the_normalised_advantages(monkeypatch):
    trainer = filled_trainer(passes=2, minibatch_segments=2, minibatch_sampling="prioritized",
                             prioritized={"alpha": 1.0, "beta0": 0.5})
    minibatches = []
    original_epoch = trainer.sampler.epoch

    def epoch(*args, **kwargs):
        for minibatch in original_epoch(*args, **kwargs):
            minibatches.append(minibatch)
            yield minibatch

    trainer.sampler.epoch = epoch
    advantages_calls = record_calls(monkeypatch, "compute_advantages")
    loss_calls = record_calls(monkeypatch, "ppo_loss")
    update(trainer)

    assert len(minibatches) == len(loss_calls) == trainer.sampler.minibatches_per_epoch == 4
    assert any(not torch.allclose(mb.weights, torch.ones(2)) for mb in minibatches)
    # The rollout's advantages and the priorities refreshed before each minibatch are over all
    # segments (a slice); the others are the minibatches' own.
    per_minibatch = [call for call in advantages_calls if not isinstance(call[0][1], slice)]
    assert len(advantages_calls) == 1 + 2 * len(per_minibatch)
    for minibatch, (_, _, raw), (_, kwargs, _) in zip(minibatches, per_minibatch, loss_calls):
        expected = normalize(raw, raw.mean(), raw.std()) * minibatch.weights[:, None]
        torch.testing.assert_close(kwargs["advantages"], expected)


# ---- target KL -------------------------------------------------------------------------------


def test_target_kl_stops_the_update_after_the_minibatch_that_exceeds_it():
    trainer = filled_trainer(passes=2, minibatch_segments=1, update_epochs=3, target_kl=1e-12,
                             optimizer={"learning_rate": 0.05})
    steps = record_steps(trainer)
    trainer.stats = StatsAccumulator()
    update(trainer)
    # The first minibatch sees the rollout policy (KL 0); the second sees it after one step.
    assert len(steps) == 2
    assert trainer.stats.values("losses/early_stop_epoch") == [0.0]


def test_without_target_kl_every_minibatch_of_every_epoch_steps():
    trainer = filled_trainer(passes=2, minibatch_segments=1, update_epochs=3, target_kl=None)
    steps = record_steps(trainer)
    update(trainer)
    assert len(steps) == 3 * trainer.segments


@pytest.mark.parametrize("mode", ["vtrace", "gae"])
def test_advantages_switch(monkeypatch, mode):
    """`vtrace` recomputes a minibatch's advantages with the current ratios; `gae` uses the
    rollout's (ratio 1) whatever the policy has become."""
    trainer, exp, segments = one_segment_trainer(advantages=mode)
    # The policy has moved since the rollout: every ratio is 0.5 (log-probs of the rollout + log 2).
    with torch.no_grad():
        logits, _ = trainer.policy.forward_sequence(exp.obs, exp.start_state, exp.episode_starts)
        exp.logprobs.copy_(logprobs_and_entropy(logits, exp.actions)[0] + math.log(2.0))
    rollout_advantages = torch.tensor([[2.5, 3.0]])  # GAE at ratio 1: 1 + 0.5·3 and 1 + 0.5·4
    loss_calls = record_calls(monkeypatch, "ppo_loss")
    ppo.minibatch_loss(trainer.policy, exp, segments, None, (0.0, 1.0), trainer.config.trainer,
                       trainer.hyper, rollout_advantages=rollout_advantages)
    kwargs = loss_calls[0][1]
    # V-trace at ratio 0.5: δ = 0.5·(r + γV' − V), carries γλc = 0.25: δ1 = 0.5·3 = 1.5, A0 = 0.5 + 0.25·1.5.
    expected = [[2.5, 3.0]] if mode == "gae" else [[0.875, 1.5]]
    assert torch.allclose(kwargs["advantages"], torch.tensor(expected))
    assert torch.allclose(kwargs["returns"], torch.tensor(expected))  # + values of 0


def test_transitions_replay_each_step_from_its_stored_state():
    """With minibatch_sampling=transitions every step runs alone from the recurrent state it was
    acted on with: before any update the log-probabilities are the rollout's (ratio 1). From a
    zero state instead they would differ: the stored states matter."""
    from heartgrid.recipes import build_config
    from heartgrid.trainer.trainer import Trainer

    config = build_config("small_easy_shaped", [
        "system.device=cpu", 'logging.console="none"', "logging.tensorboard=false",
        "trainer.num_envs=4", "trainer.batch_size=256", "trainer.minibatch_size=128",
        "trainer.minibatch_sampling=transitions", "trainer.advantages=gae",
    ])
    trainer = Trainer(config)
    with torch.no_grad():  # a trained-looking head: the action distribution depends on the state
        trainer.policy.action_head.embeddings.mul_(300.0)
    for _ in range(2):  # the second rollout starts from carried, non-zero states
        trainer.rollout()
    exp = trainer.experience
    steps = torch.arange(exp.segments * exp.bptt_horizon)
    advantages = torch.zeros(exp.segments, exp.bptt_horizon)
    loss = ppo.transition_loss(trainer.policy, exp, steps, advantages, (0.0, 1.0),
                               config.trainer, trainer.hyper)
    assert loss.approx_kl.item() < 1e-10 and abs(loss.importance.item() - 1) < 1e-6

    exp.step_state = tuple(torch.zeros_like(s) for s in exp.step_state)
    forgetful = ppo.transition_loss(trainer.policy, exp, steps, advantages, (0.0, 1.0),
                                    config.trainer, trainer.hyper)
    assert forgetful.approx_kl.item() > 1e-4

    trainer.train_epoch()  # and a whole update runs on transitions


def test_gae_ignores_the_vtrace_clips():
    """Plain GAE: clips below 1 would scale even ratio-1 advantages under V-trace, not here."""
    config = tiny_config(num_envs=1, num_agents=1, bptt=2, passes=1, minibatch_segments=1)
    trainer = make_trainer(config)
    trainer.rollout()
    exp, ones = trainer.experience, torch.ones_like(trainer.experience.values)
    exp.rewards.copy_(torch.tensor([[1.0, 1.0]]))
    clipped = config.trainer.model_copy(update={"vtrace_rho_clip": 0.5, "vtrace_c_clip": 0.5})
    plain = clipped.model_copy(update={"advantages": "gae"})
    reference = ppo.compute_advantages(exp, slice(None), exp.values, ones, config.trainer)
    assert torch.equal(ppo.compute_advantages(exp, slice(None), exp.values, ones, plain), reference)
    assert not torch.equal(ppo.compute_advantages(exp, slice(None), exp.values, ones, clipped), reference)
