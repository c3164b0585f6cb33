"""The rollout buffer: `[segments, bptt_horizon]` tensors on the training device.

A rollout fills it in `passes = segments / slots` passes; in pass p, every agent slot steps
`bptt_horizon` times and slot i writes segment row `p·slots + i`. Step t of a row holds the
observation the policy acted on, the action, its log-probability and value, and what the action
brought: the reward and whether the episode ended with this step (see advantages.py for the
indexing). Besides the per-step tensors each row keeps the recurrent state it started from (for
`forward_sequence`) and the value of the observation that follows its last step (to bootstrap
the last advantage).

Rows are the learner's slots only: with NPCs (trainer/sides.py) their steps are not stored.
With a kickstart teacher (`teacher_actions`: its number of logits, the student's actions) the
teacher's logits [S, T, A] and values [S, T] of each step are kept too; without, nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor

from heartgrid.policies.base import State


class Experience:
    def __init__(
        self,
        segments: int,
        bptt_horizon: int,
        obs_shape: tuple[int, int, int],
        state_template: State,
        device: torch.device,
        step_states: bool = False,
        teacher_actions: int | None = None,
    ):
        shape = (segments, bptt_horizon)
        self.segments, self.bptt_horizon = segments, bptt_horizon
        features, height, width = obs_shape
        # Stored [S, T, H, W, F] and viewed as [S, T, F, H, W]: the engine's observation buffer
        # has that channels-last layout, so copying a step in is a straight memcpy instead of a
        # transposing copy (measured 1.7 ms per step at 1,536 slots on CPU).
        self.obs = torch.zeros(
            *shape, height, width, features, dtype=torch.uint8, device=device
        ).permute(0, 1, 4, 2, 3)
        self.actions = torch.zeros(shape, dtype=torch.long, device=device)
        self.logprobs = torch.zeros(shape, device=device)
        self.values = torch.zeros(shape, device=device)
        self.rewards = torch.zeros(shape, device=device)
        """Reward of the step; once the rollout is complete, plus `bootstraps` (what GAE uses)."""
        self.bootstraps = torch.zeros(shape, device=device)
        """γ·V(final observation) where the step truncated the episode (with
        game.time_limit=truncate), else 0."""
        self.dones = torch.zeros(shape, dtype=torch.bool, device=device)
        """The episode ended with this step (terminal or truncated)."""
        self.truncateds = torch.zeros(shape, dtype=torch.bool, device=device)
        self.episode_starts = torch.zeros(shape, dtype=torch.bool, device=device)
        """The observation at this step is the first of an episode (the state entering it is 0)."""
        self.next_values = torch.zeros(segments, device=device)
        self.start_state: State = tuple(
            torch.zeros(segments, *s.shape[1:], dtype=s.dtype, device=device) for s in state_template
        )
        self.step_state: State | None = tuple(
            torch.zeros(*shape, *s.shape[1:], dtype=s.dtype, device=device) for s in state_template
        ) if step_states else None
        """With minibatch_sampling=transitions: the recurrent state each step was acted on with."""
        self.teacher_logits: Tensor | None = None
        self.teacher_values: Tensor | None = None
        if teacher_actions is not None:
            self.teacher_logits = torch.zeros(*shape, teacher_actions, device=device)
            self.teacher_values = torch.zeros(shape, device=device)
        self.target_values = torch.zeros(shape, device=device)
        self.ratios = torch.ones(shape, device=device)
        """π_new/π_old of each step as of its latest minibatch this update (1 until trained on):
        prioritized sampling's refreshed priorities are built on them."""
        """With `trainer.value_target=refreshed`, the values a minibatch's advantages, returns
        and value clipping are built on: the rollout values at the start of the update, then
        those the network computed for the segment the last time it was trained on."""

    def rows(self, rollout_pass: int, slots: int) -> slice:
        return slice(rollout_pass * slots, (rollout_pass + 1) * slots)

    def store_start_state(self, rows: slice, state: State) -> None:
        for buffer, tensor in zip(self.start_state, state, strict=True):
            buffer[rows] = tensor

    def store_step_state(self, rows: slice, step: int, state: State) -> None:
        for buffer, tensor in zip(self.step_state, state, strict=True):
            buffer[rows, step] = tensor

    def segment_start_state(self, segments: Tensor) -> State:
        return tuple(s[segments] for s in self.start_state)

    def summary(self) -> dict[str, Tensor]:
        """Means logged as `experience/*` (the per-step tensors of this rollout); taken before
        the bootstraps are added, so that `rewards` is the environment's reward."""
        return {
            "rewards": self.rewards.mean(),
            "values": self.values.mean(),
            "act_log_prob": self.logprobs.mean(),
            "dones": self.dones.float().mean(),
            "truncateds": self.truncateds.float().mean(),
        }
