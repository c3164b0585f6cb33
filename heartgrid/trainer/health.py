"""Warnings for training that has stopped learning, read off the metric records as they come.

Two symptoms, each over the last `logging.health_epochs` epochs (docs/learning.md has the
measurements behind them):

- **Stalled updates:** the clip fraction is 0 and approx_kl below 1e-6 in every record: the
  policy barely changes between updates.
- **A critic that explains nothing:** the explained variance averages within ±0.001: the value
  function predicts about the mean return whatever the observation.

Each warning is given once when its symptom has held for the whole window, and again only after
the symptom has gone away and come back.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

KL_FLOOR = 1e-6
# Sparse rewards keep the explained variance small even for a critic that works: over windows
# of 150 epochs the default policy's averaged 0.002-0.007 on the default recipe, SB3's PPO ~0.026
# on the base game, the saturated reference core's -0.006 to +0.001 (docs/learning.md).
EXPLAINED_VARIANCE_BAND = 0.001

STALLED = (
    "warning: training has stopped moving: clip fraction 0 and approx_kl below {kl_floor:g} for "
    "the last {epochs} epochs (approx_kl {kl:.1e}). Likely settings: the step size for this batch "
    "(trainer.optimizer.learning_rate, trainer.minibatch_size, trainer.update_epochs), a bounded "
    "actor head (policy.kwargs.action_head=bilinear caps how peaked the policy can get), a core "
    "whose output barely varies (policy.kwargs.lstm_bias=1 saturates the LSTM); see docs/learning.md"
)
CRITIC = (
    "warning: the critic explains nothing: explained variance {ev:+.4f} on average over the last "
    "{epochs} epochs. Likely settings: a core whose output barely varies across observations "
    "(policy.kwargs.lstm_bias=1 saturates the LSTM), value learning too slow for the batch "
    "(trainer.vf_coef, trainer.optimizer.learning_rate), returns too noisy to predict "
    "(trainer.gamma, trainer.gae_lambda); see docs/learning.md"
)


@dataclass
class _Window:
    """Per-record (epochs covered, value) pairs spanning at least `epochs` epochs."""

    epochs: int

    def __post_init__(self) -> None:
        self.items: deque[tuple[int, float]] = deque()
        self.warned = False

    def push(self, epochs: int, value: float) -> None:
        self.items.append((epochs, value))
        # Drop the oldest records while the rest still cover the window.
        while self.items and self.covered() - self.items[0][0] >= self.epochs:
            self.items.popleft()

    def covered(self) -> int:
        return sum(n for n, _ in self.items)

    def full(self) -> bool:
        return self.covered() >= self.epochs

    def values(self) -> list[float]:
        return [v for _, v in self.items]


class LearningHealth:
    """Feed every metrics record to `check`; it returns the warnings to show now."""

    def __init__(self, epochs: int, start_epoch: int = 0):
        """`start_epoch`: the epoch training (re)starts from, so that after a resume the first
        record counts only the epochs since then."""
        self.epochs = epochs
        self.last_epoch = start_epoch
        self.stalled = _Window(epochs)
        self.critic = _Window(epochs)

    def check(self, record: dict[str, float]) -> list[str]:
        if self.epochs <= 0:
            return []
        epoch = int(record["metric/epoch"])
        covered, self.last_epoch = epoch - self.last_epoch, epoch
        messages = []

        kl, clipfrac = record.get("losses/approx_kl"), record.get("losses/clipfrac")
        if kl is not None and clipfrac is not None:
            self.stalled.push(covered, float(clipfrac == 0 and kl < KL_FLOOR))
            if self.stalled.full() and all(self.stalled.values()):
                if not self.stalled.warned:
                    messages.append(STALLED.format(kl_floor=KL_FLOOR, epochs=self.epochs, kl=kl))
                self.stalled.warned = True
            elif not self.stalled.values()[-1]:
                self.stalled.warned = False

        ev = record.get("losses/explained_variance")  # NaN (or absent) when returns did not vary
        if ev is not None and math.isfinite(ev):
            self.critic.push(covered, ev)
            mean = sum(self.critic.values()) / len(self.critic.values())
            if self.critic.full() and abs(mean) < EXPLAINED_VARIANCE_BAND:
                if not self.critic.warned:
                    messages.append(CRITIC.format(ev=mean, epochs=self.epochs))
                self.critic.warned = True
            elif abs(mean) >= EXPLAINED_VARIANCE_BAND:
                self.critic.warned = False
        return messages
