"""Pieces shared by recipes: device-dependent trainer sizes."""

from __future__ import annotations

from heartgrid.config.trainer import TrainerConfig


def trainer_for(device: str, num_agents: int, **overrides) -> TrainerConfig:
    """Reference-scale rollouts on a GPU; a batch that trains at a useful pace on a small CPU.

    GPU: 512 envs, bptt 64, minibatch 16,384 (the reference minibatch; the reference batch of
    524,288 is not a multiple of 24-agent envs, so the batch is 512 x 24 x 64 = 786,432).
    CPU: 8 envs, bptt 32 and a small batch, so that a 2-core machine completes an update every
    few seconds; see heartgrid/recipes/README.md.
    """
    if device.startswith("cuda"):
        num_envs, bptt, minibatch = 512, 64, 16_384
    else:
        num_envs, bptt, minibatch = max(1, 192 // num_agents), 32, 2048
    batch = num_envs * num_agents * bptt
    while batch % minibatch or minibatch % bptt:
        minibatch //= 2
    fields = dict(num_envs=num_envs, bptt_horizon=bptt, batch_size=batch, minibatch_size=minibatch)
    fields.update(overrides)
    return TrainerConfig(**fields)
