"""Which segments form each minibatch (SPEC §2.1 switch `trainer.minibatch_sampling`).

`shuffled`: one random permutation of the segments per epoch, cut into minibatches, so every
segment is used exactly once per epoch. `prioritized` (PufferLib's scheme): each minibatch draws
segments without replacement with probability ∝ (Σ_t |A_t|)^alpha; the draws of different
minibatches are independent, so a segment can appear in several minibatches of one epoch or in
none. The bias is corrected by importance weights w = (S·P(segment))^(−beta) that multiply the
advantages, with beta annealed linearly from beta0 to 1 over training. alpha = 0 is uniform
sampling with all weights 1. `transitions`: one random permutation of all segments × steps per
epoch, cut into minibatches of `minibatch_size` single steps (`Minibatch.transitions`).

Indices are drawn on the CPU from the sampler's own generator, so the order of minibatches is
the same on every device and is restored exactly on resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from heartgrid.config.trainer import TrainerConfig


@dataclass
class Minibatch:
    segments: Tensor
    """Segment indices (LongTensor [minibatch_segments], CPU); with `transitions`, indices of
    single steps into the flattened [segments × bptt_horizon] buffer instead."""
    weights: Tensor | None
    """Importance weights per segment ([minibatch_segments], CPU) or None (all 1)."""
    transitions: bool = False


class MinibatchSampler:
    def __init__(self, trainer: TrainerConfig, seed: int):
        self.mode = trainer.minibatch_sampling
        self.alpha = trainer.prioritized.alpha
        self.beta0 = trainer.prioritized.beta0
        self.segments = trainer.batch_size // trainer.bptt_horizon
        self.minibatch_segments = trainer.minibatch_size // trainer.bptt_horizon
        self.minibatches_per_epoch = self.segments // self.minibatch_segments
        self.steps, self.minibatch_size = trainer.batch_size, trainer.minibatch_size
        self.generator = torch.Generator().manual_seed(seed)

    def epoch(self, advantages: Tensor, progress: float) -> Iterator[Minibatch]:
        """The minibatches of one update epoch; `advantages` [S, T] are those at ratio 1."""
        if self.mode == "shuffled":
            order = torch.randperm(self.segments, generator=self.generator)
            for chunk in order.split(self.minibatch_segments):
                yield Minibatch(chunk, None)
            return
        if self.mode == "transitions":
            order = torch.randperm(self.steps, generator=self.generator)
            for chunk in order.split(self.minibatch_size):
                yield Minibatch(chunk, None, transitions=True)
            return

        scores = advantages.detach().abs().sum(dim=1).to("cpu", torch.float64) ** self.alpha
        scores = torch.nan_to_num(scores)
        if scores.sum() <= 0:  # every advantage 0 (e.g. nothing rewarded yet): sample uniformly
            scores = torch.ones_like(scores)
        probs = scores / scores.sum()
        beta = self.beta0 + (1.0 - self.beta0) * min(max(progress, 0.0), 1.0)
        for _ in range(self.minibatches_per_epoch):
            chosen = torch.multinomial(probs, self.minibatch_segments, generator=self.generator)
            weights = (self.segments * probs[chosen]) ** (-beta)
            yield Minibatch(chosen, weights.float())

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
