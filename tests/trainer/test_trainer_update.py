"""The PPO update's switches (SPEC §2.1) each do what they say, checked on the fake engine:
gradient accumulation, value target, advantage normalisation, prioritized weights, target KL."""

from __future__ import annotations

import copy

import pytest
import torch
from trainer_fakes import DEVICES, make_trainer, tiny_config

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


# ---- value target --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["rollout", "refreshed"])
def test_value_target(monkeypatch, mode):
    """Returns = advantages + target values. The first time a segment is used the target is its
    rollout value in both modes; in the second epoch, `refreshed` uses the values the network
    computed for the segment in the first epoch, `rollout` still the rollout values."""
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
        segment = int(adv_args[1][0])
        target = loss_kwargs["returns"] - advantages
        if segment not in seen or mode == "rollout":
            torch.testing.assert_close(target, rollout_values[[segment]])
        else:
            torch.testing.assert_close(target, seen[segment])
            if segment != first_segment:
                assert not torch.allclose(target, rollout_values[[segment]])
        seen[segment] = loss_kwargs["new_values"].detach()
    assert len(seen) == trainer.segments


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

    def epoch(*args):
        for minibatch in original_epoch(*args):
            minibatches.append(minibatch)
            yield minibatch

    trainer.sampler.epoch = epoch
    advantages_calls = record_calls(monkeypatch, "compute_advantages")
    loss_calls = record_calls(monkeypatch, "ppo_loss")
    update(trainer)

    assert len(minibatches) == len(loss_calls) == trainer.sampler.minibatches_per_epoch == 4
    assert any(not torch.allclose(mb.weights, torch.ones(2)) for mb in minibatches)
    for minibatch, (_, _, raw), (_, kwargs, _) in zip(minibatches, advantages_calls[1:], loss_calls):
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
