"""Build the resolved config of a run: recipe(device) + overrides, with `auto` resolved.

The device is resolved *before* the recipe runs, because recipes pick batch sizes per device;
the resolved config therefore always names a concrete device, and the same command line gives
the same config on the same kind of machine.
"""

from __future__ import annotations

from heartgrid.config.curriculum import bucketed_paths
from heartgrid.config.overrides import OverrideError, apply_overrides, split_override
from heartgrid.config.run import RunConfig
from heartgrid.devices import DeviceError, resolve_device
from heartgrid.recipes.registry import get_recipe


def build_config(recipe: str, overrides: list[str], *, default_device: str = "auto") -> RunConfig:
    pairs = [split_override(o) for o in overrides]
    device = default_device
    for key, value in pairs:
        if key == "system.device":
            device = str(value)
    try:
        device = resolve_device(device)
    except DeviceError as e:  # a device named by an override is an override's error
        raise OverrideError(str(e)) from None
    config = get_recipe(recipe).fn(device)
    config = apply_overrides(config, {"system.device": device})
    config = apply_overrides(config, overrides)
    if config.system.device == "auto":  # an explicit system.device=auto override
        config = apply_overrides(config, {"system.device": device})
    _refuse_overrides_the_curriculum_replaces(config, [key for key, _ in pairs])
    return config  # type: ignore[return-value]


def _refuse_overrides_the_curriculum_replaces(config: RunConfig, keys: list[str]) -> None:
    """An override of a game value that every curriculum task sets from its bucket would be
    written into config.json and shown by `diff`, yet never played: the silent change the
    reference investigation was about. Refuse it and say what to change instead."""
    bucketed = bucketed_paths(config.curriculum.tasks)
    for key in keys:
        if not key.startswith("game."):
            continue
        path = key.removeprefix("game.")
        hit = next((b for b in sorted(bucketed) if path == b or path.startswith(b + ".")
                    or b.startswith(path + ".")), None)
        if hit is not None:
            raise OverrideError(
                f"{key} is set per task by the curriculum (curriculum.tasks bucket {hit!r}), so "
                "this override would never be played; change the bucket instead, e.g. "
                f"'curriculum.tasks.buckets={{\"{hit}\": [VALUE], ...}}' (JSON, all buckets), "
                "or train without the curriculum: 'curriculum.tasks={\"kind\": \"single\"}'"
            )
