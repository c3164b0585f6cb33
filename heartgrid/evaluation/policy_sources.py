"""Policies to score, with what identifies them in a scorecard and in the stats database.

    policy = policy_from_uri("runs/x")                      # newest valid checkpoint of run x
    policy = policy_from_module(my_module, label="greedy")  # any module with the policy interface

The identity (`policy_id`) is a hash of what makes the policy act as it does: for a checkpoint,
its `policy.json` and `policy.safetensors`; for a module, its class and weights. The same
checkpoint reached by two URIs (`runs/x` and `runs/x/checkpoints/epoch_000003`) is therefore one
policy in the database, and two checkpoints with the same label are two.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from heartgrid.checkpoint.durable import sha256_file
from heartgrid.checkpoint.manifest import POLICY_SPEC, POLICY_WEIGHTS
from heartgrid.checkpoint.uri import run_dir_of
from heartgrid.evaluation.run import load_evaluated_policy
from heartgrid.evaluation.scorecard import PolicyInfo

ID_LENGTH = 16  # hex digits: 64 bits, no collision in any database a person keeps


@dataclass
class EvaluatedPolicy:
    info: PolicyInfo
    module: nn.Module


def policy_from_uri(uri: str | Path, label: str | None = None) -> EvaluatedPolicy:
    """Load the policy a URI names (CheckpointError when it cannot be loaded)."""
    module, source = load_evaluated_policy(uri)
    checkpoint = source.checkpoint
    checksum = sha256_file(checkpoint / POLICY_WEIGHTS)
    digest = hashlib.sha256()
    for name in (POLICY_SPEC, POLICY_WEIGHTS):
        digest.update(sha256_file(checkpoint / name).encode())
    run_dir = run_dir_of(checkpoint)
    run = run_dir.name if run_dir is not None else None
    if label is None:
        label = f"{run}@{source.epoch}" if run is not None and source.epoch is not None else checkpoint.name
    info = PolicyInfo(
        label=label, policy_id=digest.hexdigest()[:ID_LENGTH], uri=str(uri),
        checkpoint=str(checkpoint.resolve()), run=run, epoch=source.epoch,
        agent_step=source.agent_step, checksum=checksum, architecture=source.name,
    )
    return EvaluatedPolicy(info, module)


def module_checksum(module: nn.Module) -> str:
    """sha256 of a module's class and weights (name, dtype, shape and bytes of each tensor)."""
    digest = hashlib.sha256(f"{type(module).__module__}:{type(module).__qualname__}".encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


def policy_from_module(module: nn.Module, label: str, *, run: str | None = None,
                       epoch: int | None = None, agent_step: int | None = None) -> EvaluatedPolicy:
    """A policy held in memory (a training run's current policy, a scripted one in a test)."""
    checksum = module_checksum(module)
    config = getattr(module, "config", None)
    info = PolicyInfo(label=label, policy_id=checksum[:ID_LENGTH], run=run, epoch=epoch,
                      agent_step=agent_step, checksum=checksum,
                      architecture=getattr(config, "name", None) or type(module).__qualname__)
    return EvaluatedPolicy(info, module)


def unique_labels(policies: list[EvaluatedPolicy]) -> None:
    """Give policies that share a label a suffix of their id, so a scorecard's columns differ."""
    labels = [p.info.label for p in policies]
    for policy in policies:
        if labels.count(policy.info.label) > 1:
            policy.info.label = f"{policy.info.label}#{policy.info.policy_id[:6]}"
