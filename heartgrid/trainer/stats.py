"""Accumulate statistics of any type until they are logged.

The dehydration investigation (§11) found `stats.setdefault(k, []).extend(v)` crashing, and
silently corrupting `overview/reward`, when one key received a float and later a list. Here every
value, whatever its type (Python scalar, list/tuple, possibly nested, NumPy array, torch tensor on
any device, of any shape or dtype), is flattened to float64 numbers and appended; nothing is ever
replaced, dropped or reshaped by the type of an earlier value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch


def flatten_values(value: Any) -> list[float]:
    """All numbers in `value`, in order, as Python floats."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).reshape(-1).tolist()
    if isinstance(value, np.ndarray):
        return value.astype(np.float64).reshape(-1).tolist()
    if isinstance(value, (bool, numbers.Number, np.generic)):
        return [float(value)]
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
        return [x for item in value for x in flatten_values(item)]
    raise TypeError(
        f"cannot accumulate a statistic of type {type(value).__name__} ({value!r}); "
        "give a number, a list of numbers, a NumPy array or a torch tensor"
    )


class StatsAccumulator:
    """`add` values under names; `means()` summarises them; `clear()` starts the next window."""

    def __init__(self) -> None:
        self._values: dict[str, list[float]] = {}

    def add(self, name: str, value: Any) -> None:
        self._values.setdefault(name, []).extend(flatten_values(value))

    def add_dict(self, values: Mapping[str, Any], prefix: str = "") -> None:
        for name, value in values.items():
            self.add(prefix + name, value)

    def values(self, name: str) -> list[float]:
        return list(self._values.get(name, []))

    def __contains__(self, name: str) -> bool:
        return bool(self._values.get(name))

    def names(self) -> list[str]:
        return [name for name, values in self._values.items() if values]

    def means(self) -> dict[str, float]:
        """Mean of every name that received at least one number (math.fsum: exact sums, so the
        order values arrived in cannot change the result)."""
        return {
            name: math.fsum(values) / len(values) for name, values in self._values.items() if values
        }

    def clear(self) -> None:
        self._values.clear()

    def state_dict(self) -> dict[str, list[float]]:
        return {name: list(values) for name, values in self._values.items()}

    def load_state_dict(self, state: Mapping[str, list[float]]) -> None:
        self._values = {name: [float(v) for v in values] for name, values in state.items()}
