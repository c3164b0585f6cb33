"""Which device a run uses, and host-to-device copies that do not make the host wait.

A copy from ordinary (pageable) host memory to a GPU is synchronous in PyTorch: the host waits
until the device has run every kernel queued before it, so it cannot queue the next ones
ahead. From pinned memory the copy is queued like a kernel. Every per-step or per-minibatch
transfer of host data (env ids, segment indices) goes through `to_device`.
"""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """The device asked for is not there (the CLI reports it as a usage error, exit 2)."""


def resolve_device(device: str, given: str = "system.device") -> str:
    """`auto` → `cuda` when a GPU is available, else `cpu`; any other name as it is (a config
    for a GPU may be built and read on any machine). DeviceError for a name that is neither a
    CPU nor a CUDA device, before torch meets it deep inside a command; `given`: how the user
    named the setting (a config key or an option)."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError:
        kind = None
    if kind not in ("cpu", "cuda"):  # what the engine and policies run on
        raise DeviceError(f"{given} must be auto, cpu, cuda or cuda:N, got {device!r}")
    return device


def require_device(device: str, given: str = "system.device") -> str:
    """`resolve_device`, for a device about to be used: `cuda[:N]` only when that GPU is there
    (DeviceError otherwise, rather than an assertion deep inside torch)."""
    device = resolve_device(device, given)
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "a CUDA build, but no GPU is visible"
            raise DeviceError(
                f"system.device={device}, but this PyTorch ({torch.__version__}) is {build}; use "
                "system.device=cpu or auto, or install a CUDA build of torch (README: Using a GPU)")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"system.device={device}, but only {torch.cuda.device_count()} GPU(s) are visible")
    return device


def to_device(values: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """`values` on `device`, queued without waiting: a host tensor goes to a GPU through pinned
    memory. Like `Tensor.to`, it returns `values` itself when it is already there."""
    device = torch.device(device)
    if device.type == "cuda" and values.device.type == "cpu":
        return values.pin_memory().to(device, non_blocking=True)
    return values.to(device)
