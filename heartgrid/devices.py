"""Which device a run uses, and host-to-device copies that do not make the host wait.

A copy from ordinary (pageable) host memory to a GPU is synchronous in PyTorch: the host waits
until the device has run every kernel queued before it, so it cannot queue the next ones
ahead. From pinned memory the copy is queued like a kernel. Every per-step or per-minibatch
transfer of host data (env ids, segment indices) goes through `to_device`.
"""

from __future__ import annotations

import torch


def resolve_device(device: str) -> str:
    """`auto` → `cuda` when a GPU is available, else `cpu`; any other name as it is."""
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def to_device(values: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """`values` on `device`, queued without waiting: a host tensor goes to a GPU through pinned
    memory. Like `Tensor.to`, it returns `values` itself when it is already there."""
    device = torch.device(device)
    if device.type == "cuda" and values.device.type == "cpu":
        return values.pin_memory().to(device, non_blocking=True)
    return values.to(device)
