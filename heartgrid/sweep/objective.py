"""What a trial scores: a metric of its run reduced to one number, read from metrics.jsonl.

The objective is written `[final:|late:|auc:]NAME`, with the meanings of `heartgrid compare`:
- `final:NAME` — the last logged value (at the largest agent step);
- `late:NAME` — the mean of the values logged in the last third of the agent steps the metric
  spans. **A bare NAME means `late:` in a sweep** (unlike `compare`, where it means `final:`):
  episode metrics such as `env_agent/heart.get` hold the one or two episodes that ended in a
  record's epochs, and one such value would rank trials by luck;
- `auc:NAME` — the area under the curve over agent steps divided by the steps it spans: the
  curve's time-average, which rewards learning early as well as ending high.
The same reduction of the records logged so far is each trial's intermediate value (what the
pruner compares), so a trial is judged during training by the number it will be scored by.

`heartgrid.compare` computes these with DuckDB over finished runs; a sweep follows runs while
they grow, so the reductions are re-done here in plain Python over the parsed records (the two
layers are siblings and may not import each other; a test checks that they agree).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from heartgrid.errors import UsageError
from heartgrid.rundir import METRICS_FILE, STEP_KEY

REDUCTIONS = ("final", "late", "auc")
DIRECTIONS = ("maximize", "minimize")
COSTS = {"steps": STEP_KEY, "time": "metric/total_time"}
"""A second objective, minimised: the agent steps a trial trained, or its training seconds."""
DESCRIPTIONS = {
    "final": "its last logged value",
    "late": "the mean of its last third",
    "auc": "its average over the run, area under the curve / steps",
}


@dataclass(frozen=True)
class Objective:
    reduction: str
    metric: str
    direction: str = "maximize"

    @classmethod
    def parse(cls, text: str, direction: str = "maximize") -> Objective:
        reduction, sep, name = text.partition(":")
        if not sep or reduction not in REDUCTIONS:
            reduction, name = "late", text
        if not name or name in REDUCTIONS:
            raise UsageError(f"--metric {text!r} names no metric; write [final:|late:|auc:]NAME, "
                             "e.g. late:env_agent/heart.get")
        if direction not in DIRECTIONS:
            raise UsageError(f"--direction {direction!r}: write maximize or minimize")
        return cls(reduction, name, direction)

    @property
    def text(self) -> str:
        return f"{self.reduction}:{self.metric}"

    def describe(self) -> str:
        return f"{self.text} ({self.direction}d: {DESCRIPTIONS[self.reduction]})"


def reduce(points: list[tuple[float, float]], reduction: str) -> float | None:
    """One number from (agent step, value) points sorted by step; None without points."""
    if not points:
        return None
    if reduction == "final":
        return points[-1][1]
    lo, hi = points[0][0], points[-1][0]
    if hi <= lo:  # a single step: no span to average over
        return sum(v for _, v in points) / len(points)
    if reduction == "late":
        late = [v for step, v in points if step >= lo + (hi - lo) * 2.0 / 3.0]
        return sum(late) / len(late)
    area = sum((s1 - s0) * (v0 + v1) / 2 for (s0, v0), (s1, v1) in zip(points, points[1:]))
    return area / (hi - lo)


@dataclass
class MetricsTail:
    """Follows a run's metrics.jsonl as the trainer appends to it: each `poll` parses the
    complete lines added since the last. A step logged twice (a resumed run re-logging epochs)
    keeps its later value, as in `heartgrid compare`."""

    run_dir: Path
    metric: str
    values: dict[float, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    """The newest record's values (the step, total time; cost objectives read it)."""
    names: set[str] = field(default_factory=set)
    _offset: int = 0
    _inode: int | None = None

    @property
    def path(self) -> Path:
        return self.run_dir / METRICS_FILE

    def poll(self) -> bool:
        """Read what was added; True when new records came."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return False
        if stat.st_ino != self._inode or stat.st_size < self._offset:
            # A new file (a restart moved the old one aside) or a repaired one: read it afresh.
            self.values.clear()
            self.last.clear()
            self._offset, self._inode = 0, stat.st_ino
        if stat.st_size == self._offset:
            return False
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read(stat.st_size - self._offset)
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
        self._offset += len(complete)
        added = False
        for line in complete.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a damaged line: the trainer's own repair deals with it
            if not isinstance(record, dict) or not isinstance(record.get(STEP_KEY), (int, float)):
                continue
            self.names.update(record)
            self.last = {k: v for k, v in record.items() if isinstance(v, (int, float))}
            value = record.get(self.metric)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.values[float(record[STEP_KEY])] = float(value)
            added = True
        return added

    def points(self, up_to: float = math.inf) -> list[tuple[float, float]]:
        return sorted((s, v) for s, v in self.values.items() if s <= up_to)

    def score(self, reduction: str, up_to: float = math.inf) -> float | None:
        return reduce(self.points(up_to), reduction)

    @property
    def step(self) -> float:
        return float(self.last.get(STEP_KEY, 0.0))
