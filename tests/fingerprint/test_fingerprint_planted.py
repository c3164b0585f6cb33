"""Planted changes, as a developer's unintended edit would make them: the fingerprint check
catches each one and names the stage where it acts (mutation testing of the whole pipeline).

Each change is applied with monkeypatch to the code training runs, the recipe's fingerprint
is recorded, and its first divergence from the golden fingerprint must be at the stage the
change touches. `python tests/fingerprint/test_fingerprint_planted.py` prints the catch table
of docs/fingerprint.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import heartgrid.engine.batched as batched
import heartgrid.trainer.losses as losses
import heartgrid.trainer.ppo as ppo
import heartgrid.trainer.trainer as trainer_module
from heartgrid.engine.converters import Converters
from heartgrid.engine.native import NativeStep
from heartgrid.engine.observe import Observer
from heartgrid.fingerprint import Fingerprint, capture, first_divergence
from heartgrid.fingerprint.golden import golden_dir
from heartgrid.recipes import build_config
from heartgrid.tools.fingerprint_cmd import golden_configs
from heartgrid.trainer.sampling import MinibatchSampler
from heartgrid.trainer.stats import StatsAccumulator
from heartgrid.trainer.trainer import Trainer

GOLDEN = golden_dir(Path(__file__).resolve().parents[1] / "golden" / "fingerprints")  # this CPU vendor's
RECIPE = "small_easy_shaped"
ROLLOUT = {"obs", "actions", "logprobs", "values", "rewards", "dones", "truncations", "bootstraps"}


def wrap(owner: object, name: str, make: Callable[[Callable], Callable]) -> Callable[[pytest.MonkeyPatch], None]:
    """A planted change: replace `owner.name` by `make(original)`."""
    def plant(monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(owner, name, make(getattr(owner, name)))
    return plant


def both(*plants: Callable[[pytest.MonkeyPatch], None]) -> Callable[[pytest.MonkeyPatch], None]:
    """One change planted in several places (the engine's tensor step and its C++ step)."""
    def plant(monkeypatch: pytest.MonkeyPatch) -> None:
        for one in plants:
            one(monkeypatch)
    return plant


def converter_timer_off_by_one(original):
    def advance(self, w):
        original(self, w)
        w.conv_timer.sub_((w.conv_timer > 1).to(w.conv_timer.dtype))  # converters finish one tick early
    return advance


def native_converter_timer_off_by_one(original):
    # The same edit in the C++ step: nothing after step 3 reads a timer above 1 but as "> 0",
    # so taking the tick off after the whole step is taking it off after step 3.
    def step(self, *args):
        original(self, *args)
        timer = self.world.conv_timer
        timer.sub_((timer > 1).to(timer.dtype))
    return step


def window_shifted(original):
    def observe(self, w, rewards):
        original(self, w, rewards)
        self.store.copy_(self.store.roll(1, dims=2))  # every window one cell to the side
    return observe


def native_window_shifted(original):
    def step(self, *args):  # the C++ step writes the windows itself
        original(self, *args)
        self.obs.copy_(self.obs.roll(1, dims=2))
    return step


def lambda_gets_gamma(original):
    return lambda *args, **kw: original(*args, **{**kw, "gae_lambda": kw["gamma"]})


def bootstrap_inverted(original):
    def store(self, bootstraps):
        original(self, bootstraps)
        bootstraps.neg_()
    return store


def reward_weights_doubled(original):
    def reset(self, *args, **kw):
        original(self, *args, **kw)
        self.world.param_reward_weight.mul_(2)
    return reset


def entropy_bonus_inverted(original):
    return lambda **kw: original(**{**kw, "ent_coef": -kw["ent_coef"]})


def value_coef_halved(original):
    return lambda **kw: original(**{**kw, "vf_coef": kw["vf_coef"] / 2})


def clip_coef_changed(original):
    return lambda **kw: original(**{**kw, "clip_coef": kw["clip_coef"] * 0.01})


def advantages_not_scaled(original):
    return lambda advantages, mean, std: original(advantages, mean, 1.0)


def segments_in_order(original):
    def epoch(self, advantages, progress, **kwargs):
        for minibatch in original(self, advantages, progress, **kwargs):
            minibatch.segments = minibatch.segments.sort().values
            yield minibatch
    return epoch


def adam_eps_changed(original):
    def build(policy, config):
        optimizer = original(policy, config)
        for group in optimizer.param_groups:
            group["eps"] = 1e-4
        return optimizer
    return build


def episode_length_stat_scaled(original):
    def add(self, name, value):
        original(self, name, value * 1.5 if name == "experience/ep_lengths" else value)
    return add


def recurrent_state_kept_on_done(original):
    return lambda state, dones: state  # the next episode starts with the last one's memory


def sampling_temperature(original):
    return lambda logits, generator: original(logits * 20, generator)


def next_value_dropped(original):
    def rollout(self):
        original(self)
        self.experience.next_values.zero_()
    return rollout


def value_clip_takes_min(original):
    def loss(new_values, old_values, returns, vf_clip_coef):
        unclipped = (new_values - returns) ** 2
        clipped = (old_values + (new_values - old_values).clamp(-vf_clip_coef, vf_clip_coef) - returns) ** 2
        return 0.5 * torch.min(unclipped, clipped).mean()
    return loss


def policy_clip_takes_min(original):
    def loss(advantages, ratio, clip_coef):
        clipped = -advantages * ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef)
        return torch.min(-advantages * ratio, clipped).mean()
    return loss


def metric_renamed(original):
    def means(self):
        return {("losses/value" if k == "losses/value_loss" else k): v for k, v in original(self).items()}
    return means


# name -> (what the change does, the plant, the stages it acts at first)
PLANTED = {
    "converter_timer_off_by_one": ("engine: converters finish one tick early (batched engine only)",
                                   both(wrap(Converters, "advance", converter_timer_off_by_one),
                                        wrap(NativeStep, "__call__", native_converter_timer_off_by_one)),
                                   ROLLOUT | {"world"}),
    "observation_window_shifted": ("engine: the observation window one cell to the side",
                                   both(wrap(Observer, "observe_globals", window_shifted),
                                      wrap(NativeStep, "__call__", native_window_shifted)), {"obs"}),
    "reward_weights_doubled": ("engine: reward weights doubled at reset",
                               wrap(batched.BatchedEngine, "reset", reward_weights_doubled), {"world_floats"}),
    "lambda_gets_gamma": ("advantages: gae_lambda receives gamma's value",
                          wrap(ppo, "vtrace_gae", lambda_gets_gamma), {"advantages"}),
    "next_value_dropped": ("advantages: the value after the last step taken as 0",
                           wrap(Trainer, "rollout", next_value_dropped), {"advantages"}),
    "bootstrap_inverted": ("rollout: the truncation bootstrap's sign inverted",
                           wrap(Trainer, "store_truncation_bootstrap", bootstrap_inverted), {"bootstraps"}),
    # An untrained LSTM's state moves the rollout's log-probs less than the tolerance; the
    # update, which does reset at episode starts, then sees ratios != 1 (old_approx_kl > 0).
    "recurrent_state_kept_on_done": ("rollout: the LSTM state not reset when an episode ends",
                                     wrap(trainer_module, "reset_state", recurrent_state_kept_on_done),
                                     {"actions", "logprobs", "values", "losses"}),
    "sampling_temperature": ("policy: actions sampled at temperature 0.05",
                             wrap(trainer_module, "sample_actions", sampling_temperature), {"actions", "logprobs"}),
    "entropy_bonus_inverted": ("loss: the entropy bonus's sign inverted",
                               wrap(ppo, "ppo_loss", entropy_bonus_inverted), {"losses"}),
    # Early on the value loss is small next to the entropy term: the total moves less than
    # the tolerance, the critic's gradient does not.
    "value_coef_halved": ("loss: the value loss coefficient halved",
                          wrap(ppo, "ppo_loss", value_coef_halved), {"losses", "gradients"}),
    "clip_coef_changed": ("loss: the PPO clip coefficient a hundredth",
                          wrap(ppo, "ppo_loss", clip_coef_changed), {"losses"}),
    # The recipes' clip ranges are not reached within the recorded updates: these two are
    # caught by the golden whose ranges are narrow (TIGHT_CLIPS), and by no recipe's.
    "value_clip_takes_min": ("loss: the clipped value loss takes the min of its two terms",
                             wrap(losses, "clipped_value_loss", value_clip_takes_min), {"losses"}),
    "policy_clip_takes_min": ("loss: the clipped policy loss takes the min of its two terms",
                              wrap(losses, "clipped_policy_loss", policy_clip_takes_min), {"losses"}),
    # At ratio 1 the policy loss is -mean(normalised advantages), 0 whatever their scale: the
    # loss's value cannot show this change, its gradient does.
    "advantages_not_scaled": ("loss: advantages centred but not divided by their std",
                              wrap(ppo, "normalize", advantages_not_scaled), {"losses", "gradients"}),
    "segments_in_order": ("sampling: minibatch segments in buffer order",
                          wrap(MinibatchSampler, "epoch", segments_in_order), {"sampling"}),
    "adam_eps_changed": ("optimizer: Adam's eps 1e-4",
                         wrap(trainer_module, "build_optimizer", adam_eps_changed), {"weights"}),
    "episode_length_stat_scaled": ("stats: the logged episode length scaled",
                                   wrap(StatsAccumulator, "add", episode_length_stat_scaled), {"metrics"}),
    "metric_renamed": ("stats: losses/value_loss logged as losses/value",
                       wrap(StatsAccumulator, "means", metric_renamed), {"metrics"}),
}


TIGHT_CLIPS = "switch-tight_clips"
GOLDEN_OF = {"value_clip_takes_min": TIGHT_CLIPS, "policy_clip_takes_min": TIGHT_CLIPS}  # else RECIPE's


def caught(plant, monkeypatch: pytest.MonkeyPatch, golden_name: str):
    """The first divergence of the planted code's fingerprint from golden `golden_name`'s."""
    golden = Fingerprint.load(GOLDEN / f"{golden_name}.json")
    recipe, overrides = golden_configs()[golden_name]
    with monkeypatch.context() as patch:
        plant(patch)
        started = time.perf_counter()
        changed = capture(build_config(recipe, overrides, default_device="cpu"), golden.updates)
        return first_divergence(golden, changed), time.perf_counter() - started


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_the_fingerprint_catches_a_planted_change_at_its_stage(name, monkeypatch):
    _, plant, stages = PLANTED[name]
    divergence, _ = caught(plant, monkeypatch, GOLDEN_OF.get(name, RECIPE))
    assert divergence is not None, f"{name} was not caught"
    assert divergence.stage in stages, divergence.message()
    assert divergence.message().startswith(f"first divergence: update {divergence.update}, stage `{divergence.stage}`")


@pytest.mark.parametrize("name", sorted(GOLDEN_OF))
def test_a_clipped_branch_is_idle_at_the_recipes_clip_ranges(name, monkeypatch):
    """Why TIGHT_CLIPS exists: the recipe's own golden cannot see these changes."""
    divergence, _ = caught(PLANTED[name][1], monkeypatch, RECIPE)
    assert divergence is None, divergence.message()


@pytest.mark.parametrize("golden_name", [RECIPE, TIGHT_CLIPS])
def test_unchanged_code_matches_its_golden_fingerprint(monkeypatch, golden_name):
    divergence, _ = caught(lambda patch: None, monkeypatch, golden_name)
    assert divergence is None, divergence.message()


if __name__ == "__main__":  # the catch table of docs/fingerprint.md
    print("| planted change | caught by | time | message |\n|---|---|---|---|")
    for name, (what, plant, _) in PLANTED.items():
        golden_name = GOLDEN_OF.get(name, RECIPE)
        with pytest.MonkeyPatch.context() as patch:
            found, seconds = caught(plant, patch, golden_name)
        by = "`fingerprint --check`" + ("" if golden_name == RECIPE else f" (`{golden_name}`)")
        print(f"| {what} | {by} | {seconds:.1f} s | {found.message() if found else 'NOT CAUGHT'} |")
