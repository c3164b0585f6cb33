"""What is compared: a metric name, how a run's curve is reduced to one number, and its direction.

A spec is written `[final:|late:|auc:]NAME[:higher|:lower]`:
- `final:env_agent/heart.get` — the run's last logged value (at its largest agent_step);
- `late:env_agent/heart.get` — the mean of the values logged in the last third of the agent
  steps the metric spans. For metrics of finished episodes, whose records each hold the one or
  two episodes that ended in that epoch, `final` is a single episode's value; `late` pools the
  end of the run (docs/learning.md used it for the ablations);
- `auc:overview/reward` — the area under the curve over agent_step (trapezoid rule) divided by
  the agent steps it spans, i.e. the curve's time-average. Dividing keeps the number in the
  metric's own units, so runs of different lengths and the two sides of a report read alike;
- a bare `NAME` means `final:NAME`;
- `:higher` / `:lower` says which direction is better; without it the direction comes from
  `LOWER_IS_BETTER` (failures, blocked counts, time per phase) and is "higher" otherwise.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from typing import Literal

Reduction = Literal["final", "late", "auc"]
REDUCTIONS: tuple[str, ...] = ("final", "late", "auc")

# Metrics where a smaller value is the better outcome (shell-style patterns).
LOWER_IS_BETTER: tuple[str, ...] = (
    "*.failed",
    "*blocked*",
    "timing/*",
)

# `heartgrid ab`, `compare` and `baseline save` guard these unless told otherwise.
DEFAULT_METRICS: tuple[str, ...] = ("final:env_agent/heart.get", "auc:overview/reward")


def unknown_reduction(text: str) -> str | None:
    """The word before the first ':' of a spec when it is neither a reduction nor part of a
    metric name (metric names have a section, `overview/...`): `bogus` in `bogus:overview/x`."""
    head, colon, _ = text.partition(":")
    return head if colon and "/" not in head and head not in REDUCTIONS else None


class MetricSpecError(ValueError):
    """A metric spec that cannot be parsed."""


@dataclass(frozen=True)
class MetricSpec:
    reduction: Reduction
    name: str
    higher_is_better: bool

    @classmethod
    def parse(cls, text: str) -> MetricSpec:
        parts = text.split(":")
        reduction: Reduction = "final"
        if parts[0] in REDUCTIONS:
            reduction = parts.pop(0)  # type: ignore[assignment]
        elif unknown_reduction(text) is not None:
            close = difflib.get_close_matches(parts[0], REDUCTIONS, n=1)
            if close:
                raise MetricSpecError(
                    f"metric spec {text!r}: unknown reduction {parts[0]!r}; did you mean {close[0]!r}? "
                    "(write [final:|late:|auc:]NAME[:higher|:lower])")
        direction = None
        if len(parts) > 1 and parts[-1] in ("higher", "lower"):
            direction = parts.pop() == "higher"
        name = ":".join(parts)
        if not name:
            raise MetricSpecError(
                f"metric spec {text!r} names no metric; write [final:|late:|auc:]NAME[:higher|:lower], "
                "e.g. auc:overview/reward"
            )
        if direction is None:
            direction = not any(fnmatch.fnmatchcase(name, p) for p in LOWER_IS_BETTER)
        return cls(reduction, name, direction)

    @property
    def key(self) -> str:
        """The canonical text of the spec: parsing it gives this spec back."""
        return f"{self.reduction}:{self.name}:{'higher' if self.higher_is_better else 'lower'}"

    @property
    def label(self) -> str:
        return f"{self.reduction} {self.name}"


def parse_metrics(texts: list[str] | tuple[str, ...] | None) -> list[MetricSpec]:
    """Parse specs, defaulting to DEFAULT_METRICS; a metric named twice is kept once."""
    specs: list[MetricSpec] = []
    for text in texts or DEFAULT_METRICS:
        spec = MetricSpec.parse(text)
        if spec not in specs:
            specs.append(spec)
    return specs
