"""Build the resolved config of a run: recipe(device) + overrides, with `auto` resolved.

The device is resolved *before* the recipe runs, because recipes pick batch sizes per device;
the resolved config therefore always names a concrete device, and the same command line gives
the same config on the same kind of machine.
"""

from __future__ import annotations

from heartgrid.config.overrides import apply_overrides, split_override
from heartgrid.config.run import RunConfig
from heartgrid.recipes import get_recipe


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_config(recipe: str, overrides: list[str], *, default_device: str = "auto") -> RunConfig:
    pairs = [split_override(o) for o in overrides]
    device = default_device
    for key, value in pairs:
        if key == "system.device":
            device = str(value)
    device = resolve_device(device)
    config = get_recipe(recipe).fn(device)
    config = apply_overrides(config, {"system.device": device})
    config = apply_overrides(config, overrides)
    if config.system.device == "auto":  # an explicit system.device=auto override
        config = apply_overrides(config, {"system.device": device})
    return config  # type: ignore[return-value]
