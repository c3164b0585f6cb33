"""Which segments form each minibatch (SPEC §2.1 switch `trainer.minibatch_sampling`).

`shuffled`: one random permutation of the segments per epoch, cut into minibatches, so every
segment is used exactly once per epoch. `prioritized` (after PufferLib's scheme): each minibatch
draws segments with probability P_i ∝ (Σ_t |A_i,t|)^alpha; the draws of different minibatches
are independent, so a segment can appear in several minibatches of one epoch or in none. The
bias is corrected by importance weights w_i = (S·P_i)^(−beta) that multiply the advantages.
Drawn with replacement (the default), E[w_i·count_i] = k·S^(−1) for every segment at beta = 1:
the correction is exact. The reference draws without replacement, where it is not (switch
`prioritized.draws`). beta follows `prioritized.beta_schedule`; the priorities are recomputed
before each minibatch (`prioritized.refresh`, through the `refresh` callable) or once per
update. alpha = 0 is uniform sampling with all weights 1. `transitions`: one random
permutation of all segments × steps per epoch, cut into minibatches of `minibatch_size` single
steps (`Minibatch.transitions`).

Indices are drawn on the CPU from the sampler's own generator, so the order of minibatches is
the same on every device and is restored exactly on resume.

With several ranks (docs/distributed.md) every rank's sampler is seeded alike and draws the
minibatches of the world's segments (`world_size` times a rank's; indices as one process
holding the world's envs would number them), and prioritized sampling's priorities are the
world's: `gather_scores` (World.gather_rows) collects every rank's per-segment scores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    def __init__(self, trainer: TrainerConfig, seed: int, world_size: int = 1,
                 gather_scores: Callable[[Tensor], Tensor] | None = None):
        """`world_size`: the ranks training together (each holds a share of the segments);
        `gather_scores` turns a rank's per-segment priority scores [segments] into the world's."""
        self.mode = trainer.minibatch_sampling
        self.alpha = trainer.prioritized.alpha
        self.beta0 = trainer.prioritized.beta0
        self.beta_schedule = trainer.prioritized.beta_schedule
        self.refresh_each_minibatch = trainer.prioritized.refresh == "minibatch"
        self.replacement = trainer.prioritized.draws == "with_replacement"
        self.segments = trainer.batch_size // trainer.bptt_horizon * world_size
        self.minibatch_segments = trainer.minibatch_size // trainer.bptt_horizon * world_size
        self.minibatches_per_epoch = self.segments // self.minibatch_segments
        self.steps, self.minibatch_size = trainer.batch_size * world_size, trainer.minibatch_size * world_size
        self.gather_scores = gather_scores
        self.generator = torch.Generator().manual_seed(seed)

    def epoch(
        self, advantages: Tensor, progress: float, refresh: Callable[[], Tensor] | None = None
    ) -> Iterator[Minibatch]:
        """The minibatches of one update epoch; `advantages` [S, T] are those at ratio 1;
        `refresh()` returns every segment's current advantages (prioritized, refresh=minibatch)."""
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

        beta = self.beta(progress)
        probs = self.probabilities(advantages)
        for _ in range(self.minibatches_per_epoch):
            if refresh is not None and self.refresh_each_minibatch:
                probs = self.probabilities(refresh())
            chosen = torch.multinomial(probs, self.minibatch_segments, replacement=self.replacement,
                                       generator=self.generator)
            weights = (self.segments * probs[chosen]) ** (-beta)
            yield Minibatch(chosen, weights.float())

    def probabilities(self, advantages: Tensor) -> Tensor:
        """P_i ∝ (Σ_t |A_i,t|)^alpha, on the CPU in float64."""
        scores = advantages.detach().abs().sum(dim=1)
        if self.gather_scores is not None:
            scores = self.gather_scores(scores)
        scores = scores.to("cpu", torch.float64) ** self.alpha
        scores = torch.nan_to_num(scores)
        if scores.sum() <= 0:  # every advantage 0 (e.g. nothing rewarded yet): sample uniformly
            scores = torch.ones_like(scores)
        return scores / scores.sum()

    def beta(self, progress: float) -> float:
        p = min(max(progress, 0.0), 1.0)
        rate = self.alpha if self.beta_schedule == "reference" else 1.0
        return min(self.beta0 + (1.0 - self.beta0) * rate * p, 1.0)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
