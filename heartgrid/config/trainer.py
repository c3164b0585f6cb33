"""Typed configuration of the PPO trainer (SPEC §2), including every behaviour switch (§2.1).

The switches are ordinary fields with a documented default, so they are written into every
run's resolved config and `heartgrid diff` / `heartgrid ab` can show and test them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from heartgrid.config.base import Config
from heartgrid.config.kickstart import KickstartConfig


class OptimizerConfig(Config):
    type: Literal["adam", "muon"] = "adam"
    """`adam`, or `muon`: torch.optim.Muon (PyTorch >= 2.9) for the weights of linear,
    convolution and recurrent layers, Adam for biases, norms, embedding tables and learned
    queries; both use learning_rate."""
    learning_rate: float = Field(0.000457, gt=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    eps: float = Field(1e-12, gt=0)
    weight_decay: float = Field(0.0, ge=0)


class ScheduleConfig(Config):
    """A schedule of one hyperparameter over training progress p = agent_step / total_timesteps."""

    type: Literal["constant", "linear", "cosine", "exponential", "logarithmic"]
    initial: float
    final: float
    """Value at the end of training (ignored by `constant`)."""

    @model_validator(mode="after")
    def _positive_for_exponential(self) -> ScheduleConfig:
        if self.type == "exponential" and (self.initial <= 0 or self.final <= 0):
            raise ValueError(
                f"an exponential schedule needs initial and final > 0, got {self.initial} and "
                f"{self.final}; use a linear or cosine schedule to reach 0"
            )
        return self


ScheduledName = Literal["learning_rate", "clip_coef", "ent_coef", "vf_clip_coef"]


class PrioritizedSamplingConfig(Config):
    """minibatch_sampling=prioritized: segment i is drawn with probability
    P_i = p_i / Σ p_j, p_i = (Σ_t |A_i,t|)^alpha, and its advantages are weighted by
    w_i = (S·P_i)^(−beta) (S segments)."""

    alpha: float = Field(0.0, ge=0)
    """Sampling weight of a segment is |advantage|^alpha (0 = uniform)."""
    beta0: float = Field(0.6, ge=0, le=1)
    """Importance-weight exponent at the start of training (its course: beta_schedule)."""
    beta_schedule: Literal["reference", "to_one"] = "reference"
    """beta over training progress p = agent_step / total_timesteps. `reference` (the reference
    system and PufferLib): beta = beta0 + (1 − beta0)·alpha·p, which reaches 1 at the end only
    when alpha = 1. `to_one`: beta = beta0 + (1 − beta0)·p, 1 at the end whatever alpha."""
    refresh: Literal["minibatch", "update"] = "minibatch"
    """When the priorities are computed. `minibatch` (the reference): before each minibatch,
    from every segment's V-trace advantages under the ratios of its latest minibatch (1 until
    it is trained on) and the value target's current values. `update`: once per update, from
    the rollout's advantages at ratio 1."""
    draws: Literal["with_replacement", "without_replacement"] = "with_replacement"
    """`with_replacement`: a minibatch's segments are independent draws, so at beta = 1 the
    weights remove the sampling bias exactly (E[w_i·count_i] is the same for every segment).
    `without_replacement`: the reference's draws, under which the same weights do not remove
    it (high-priority segments end up under-weighted); kept for A/B."""


class TrainerConfig(Config):
    total_timesteps: int = Field(10_000_000_000, ge=1)
    """Agent steps to train for, of the whole world when several ranks train together
    (docs/distributed.md). May change when a run is resumed only if trainer.schedules is
    empty and minibatch_sampling=shuffled: both follow progress = agent_step / total_timesteps."""
    num_envs: int = Field(512, ge=1)
    """Environments stepped together by the batched engine; per rank when several ranks train
    together (the world steps num_envs x distributed.world_size)."""
    batch_size: int = Field(786_432, ge=1)
    """Agent steps per rollout (= segments x bptt_horizon), per rank (the world's update takes
    batch_size x distributed.world_size). The reference 524,288 is not a multiple of 24-agent
    envs x bptt 64; 512 envs x 24 agents x 64 steps is the nearest fit."""
    minibatch_size: int = Field(16_384, ge=1)
    """Agent steps per optimizer step, per rank (the world's minibatch: x world_size)."""
    bptt_horizon: int = Field(64, ge=1)
    """Length of a segment: steps the recurrent policy is unrolled over in the update."""
    update_epochs: int = Field(1, ge=1)

    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    gamma: float = Field(0.977, ge=0, le=1)
    gae_lambda: float = Field(0.916, ge=0, le=1)
    vtrace_rho_clip: float = Field(1.0, gt=0)
    vtrace_c_clip: float = Field(1.0, gt=0)
    clip_coef: float = Field(0.1, gt=0)
    vf_clip_coef: float = Field(0.1, gt=0)
    vf_coef: float = Field(0.44, ge=0)
    ent_coef: float = Field(0.0021, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    target_kl: float | None = Field(None, gt=0)
    """Skip the rest of the update (remaining minibatches and epochs) once a minibatch's
    approx_kl exceeds this; None disables."""

    checkpoint_interval: int = Field(50, ge=1)
    """Epochs between checkpoints (one is also written at the end and on Ctrl-C)."""
    keep_last_n: int = Field(5, ge=1)
    """Older checkpoints are deleted."""
    initial_policy: str | None = None
    """Policy URI to start from (weights only, fresh optimizer)."""

    # ---- behaviour switches (SPEC §2.1) ------------------------------------------------
    value_target: Literal["rollout", "refreshed"] = "rollout"
    """The values a minibatch's advantages, returns (= advantages + values) and value clipping
    are built on: those recorded at rollout (`rollout`, reference behaviour), or, as in
    PufferLib, those the network computed for the segment the last time it was trained on in
    this update, the rollout's the first time (`refreshed`). Only matters with update_epochs > 1
    or minibatch_sampling=prioritized, where a segment is trained on more than once per update."""
    grad_accumulation: Literal["accumulate", "legacy"] = "accumulate"
    """With micro_batch_size < minibatch_size: `accumulate` sums scaled micro-batch gradients
    into one optimizer step, which is then the whole minibatch's gradient for every
    advantage_norm (`minibatch` normalises each micro-batch with the minibatch's mean and std).
    `legacy` keeps the reference's behaviour for A/B: the gradient is zeroed before every
    micro-batch, so the step applies only the last micro-batch's gradient, unscaled, with its
    advantages normalised by that micro-batch's own statistics."""
    micro_batch_size: int | None = Field(None, ge=1)
    """Segments x steps per backward pass, per rank; None = the whole minibatch."""
    minibatch_sampling: Literal["shuffled", "prioritized", "transitions"] = "shuffled"
    """`shuffled`: every segment exactly once per epoch. `prioritized`: by |advantage|^alpha.
    `transitions`: minibatches of single steps from all segments (every step once per epoch),
    each run from the recurrent state it was acted on with, stored at rollout (memory: the state
    size per step); needs advantages=gae and value_target=rollout."""
    prioritized: PrioritizedSamplingConfig = Field(default_factory=PrioritizedSamplingConfig)
    advantage_norm: Literal["minibatch", "global", "off"] = "minibatch"
    advantages: Literal["vtrace", "gae"] = "vtrace"
    """`vtrace` (reference): each minibatch's advantages are recomputed with the current
    policy's ratios, V-trace clipped. `gae` (CleanRL, SB3): plain GAE, once per rollout at
    ratio 1, returns = those advantages + the rollout's values."""
    recurrent_state: Literal["reset", "carry"] = "carry"
    """`carry`: LSTM state carries across rollouts (reset only at episode ends); `reset`: zeroed
    at the start of every rollout."""
    schedules: dict[ScheduledName, ScheduleConfig] = Field(default_factory=dict)
    """Per-parameter schedules; empty = every value constant (the default)."""
    kickstart: KickstartConfig = Field(default_factory=KickstartConfig)
    """Learn from a teacher policy as well as from the reward, annealed to nothing
    (trainer/kickstart.py, docs/kickstart.md); off unless kickstart.teacher_uri is set."""

    @model_validator(mode="after")
    def _divisibility(self) -> TrainerConfig:
        if self.batch_size % self.minibatch_size:
            raise ValueError(
                f"trainer.minibatch_size={self.minibatch_size} must divide trainer.batch_size="
                f"{self.batch_size}; for example set trainer.minibatch_size="
                f"{_suggest_minibatch(self.batch_size, self.minibatch_size, self.bptt_horizon)}"
            )
        if self.minibatch_size % self.bptt_horizon:
            raise ValueError(
                f"trainer.bptt_horizon={self.bptt_horizon} must divide trainer.minibatch_size="
                f"{self.minibatch_size}; for example set trainer.minibatch_size="
                f"{max(self.bptt_horizon, self.minibatch_size // self.bptt_horizon * self.bptt_horizon)}"
            )
        if self.advantages == "gae" and self.value_target == "refreshed":
            raise ValueError(
                "trainer.advantages=gae computes advantages and returns once per rollout from the "
                "rollout's values; trainer.value_target=refreshed needs them recomputed per "
                "minibatch (advantages=vtrace)"
            )
        if self.minibatch_sampling == "transitions" and (
            self.advantages != "gae" or self.value_target != "rollout"
        ):
            raise ValueError(
                "trainer.minibatch_sampling=transitions needs trainer.advantages=gae and "
                "trainer.value_target=rollout: V-trace and refreshed values are computed along "
                "whole segments, which a minibatch of single steps does not hold"
            )
        if self.micro_batch_size is not None and (
            self.minibatch_size % self.micro_batch_size or self.micro_batch_size % self.bptt_horizon
        ):
            raise ValueError(
                f"trainer.micro_batch_size={self.micro_batch_size} must divide trainer.minibatch_size="
                f"{self.minibatch_size} and be a multiple of trainer.bptt_horizon={self.bptt_horizon}"
            )
        return self


def _suggest_minibatch(batch: int, minibatch: int, bptt: int) -> int:
    """The largest valid minibatch not above `minibatch`: a multiple of bptt dividing batch."""
    if batch % bptt:
        return bptt  # the batch rule fails too; its own message says what to change
    segments = batch // bptt
    for d in range(max(1, min(segments, minibatch // bptt)), 0, -1):
        if segments % d == 0:
            return d * bptt
    return bptt
