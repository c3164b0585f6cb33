"""Pieces shared by recipes: device-dependent trainer sizes and evaluation."""

from __future__ import annotations

from heartgrid.config.run import EvaluationConfig
from heartgrid.config.trainer import TrainerConfig

GPU_EVALUATION_INTERVAL = 100
"""Epochs between suite evaluations while training on a GPU (about every 80M agent steps at the
reference batch; an evaluation of a suite takes seconds there)."""


def evaluation_for(device: str, suite: str) -> EvaluationConfig:
    """On a GPU, evaluate on `suite` while training; on a CPU, where an evaluation costs as
    much as several epochs, not by default (evaluation.interval=N turns it on)."""
    if device.startswith("cuda"):
        return EvaluationConfig(suite=suite, interval=GPU_EVALUATION_INTERVAL)
    return EvaluationConfig(suite=suite)


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
