"""Task generators (SPEC §3): every task is a full, validated game config plus a readable name.

Three composable generators, built from `heartgrid.config.curriculum`:

- `single`: one game (the run's `game` unless the config gives its own), named by `name`.
- `set`: weighted children; a task comes from one child drawn by weight.
- `bucketed`: a child plus dotted game paths (`agent.rewards.ore_red`), each with a list of values
  (one drawn uniformly per task) or a numeric range (sampled uniformly per task).

A task is a pure function of its seed: `generator.make_task(task_id, seed)` draws everything from
`numpy.random.default_rng(seed)`, so a checkpoint only needs `(task_id, seed)` to rebuild a task.

Task names. `single` -> its name (`arena`). `bucketed` -> `<child name>/<label>=<value>,...`,
listing only the buckets whose drawn value differs from the child's game, in the order of their
paths (`agent.reward_caps.*` < `agent.rewards.*` < `objects.*`), e.g.
`arena/reward_caps.battery_red=2,rewards.ore_red=0.5,altar.initial_resource_count=1`. A label is
the shortest dotted suffix of the path that is unique among the generator's bucket paths
(`agent.rewards.ore_red` -> `rewards.ore_red` because `agent.reward_caps.ore_red` also ends in
`ore_red`). Because the base game is fixed for a run, equal names mean equal games.

Ranges: integer-valued when the game's current value at the path is an integer (counts,
cooldowns), otherwise a float rounded to 4 significant digits (so that the name shows the exact
value of the game).
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from heartgrid.config.curriculum import (
    BucketedTaskConfig,
    RangeConfig,
    SingleTaskConfig,
    TaskSetConfig,
)
from heartgrid.config.game import GameConfig
from heartgrid.config.overrides import OverrideError, apply_overrides

_MISSING = object()
"""The value at a dotted path that does not exist (yet): a new dict key, for example."""


@dataclass(frozen=True)
class Task:
    id: int
    """Unique within a run; the engine reports it back with every finished episode."""
    seed: int
    """The seed the task was drawn from: `make_task(id, seed)` rebuilds the same task."""
    name: str
    game: GameConfig


@dataclass(frozen=True)
class TaskDraft:
    """A drawn task before its game is built: cheap to draw, so duplicates can be skipped."""

    name: str
    base: GameConfig
    overrides: dict[str, Any] = field(default_factory=dict)
    """Dotted game path -> value, applied to `base` in order."""

    def value_at(self, path: str) -> Any:
        """The value this draft gives `path`: its own override, else the base game's value."""
        if path in self.overrides:
            return self.overrides[path]
        return get_path(self.base, path)

    def build(self) -> GameConfig:
        if not self.overrides:
            return self.base
        try:
            return apply_overrides(self.base, self.overrides)  # type: ignore[return-value]
        except OverrideError as err:
            # Each bucket value was checked alone; this combination breaks a cross-field rule.
            raise ValueError(f"curriculum task {self.name!r} is not a valid game: {err}") from None


def get_path(model: BaseModel, dotted: str) -> Any:
    """The value at a dotted path of a config (`agent.rewards.ore_red`), or `_MISSING`."""
    node: Any = model
    for part in dotted.split("."):
        if isinstance(node, BaseModel) and part in type(node).model_fields:
            node = getattr(node, part)
        elif isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def format_value(value: Any) -> str:
    """A value as it appears in a task name: `0.5`, `2`, `true`, `"text"` unquoted, JSON else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def short_labels(paths: list[str]) -> dict[str, str]:
    """Each path's shortest dotted suffix that no other path in `paths` ends with."""
    labels = {}
    for path in paths:
        parts = path.split(".")
        for n in range(1, len(parts) + 1):
            label = ".".join(parts[-n:])
            clashes = [p for p in paths if p != path and (p == label or p.endswith("." + label))]
            if not clashes:
                break
        labels[path] = label
    return labels


class TaskGenerator(ABC):
    @abstractmethod
    def draft(self, rng: np.random.Generator) -> TaskDraft:
        """Draw one task (name and overrides) from `rng`."""

    @abstractmethod
    def num_distinct(self) -> int | None:
        """How many different tasks this generator can produce; None when unbounded."""

    @abstractmethod
    def base_games(self) -> list[GameConfig]:
        """Every game a task's overrides may be applied to (used to check bucket paths)."""

    @abstractmethod
    def root_names(self) -> set[str]:
        """The names that start this generator's task names (the `single` names under it)."""

    def make_task(self, task_id: int, seed: int) -> Task:
        draft = self.draft(np.random.default_rng(seed))
        return Task(id=task_id, seed=seed, name=draft.name, game=draft.build())


class SingleTaskGenerator(TaskGenerator):
    def __init__(self, name: str, game: GameConfig):
        self.name = name
        self.game = game

    def draft(self, rng: np.random.Generator) -> TaskDraft:
        return TaskDraft(self.name, self.game)

    def num_distinct(self) -> int | None:
        return 1

    def base_games(self) -> list[GameConfig]:
        return [self.game]

    def root_names(self) -> set[str]:
        return {self.name}


class TaskSetGenerator(TaskGenerator):
    def __init__(self, children: list[TaskGenerator], weights: list[float]):
        if not children:
            raise ValueError("a task set needs at least one child generator")
        seen: set[str] = set()
        for child in children:
            shared = seen & child.root_names()
            if shared:
                raise ValueError(
                    f"task set children share the task name(s) {sorted(shared)}; give each "
                    "single task under a set a distinct `name` so their tasks can be told apart"
                )
            seen |= child.root_names()
        self.children = children
        self.probabilities = np.asarray(weights, dtype=np.float64) / math.fsum(weights)

    def draft(self, rng: np.random.Generator) -> TaskDraft:
        child = self.children[rng.choice(len(self.children), p=self.probabilities)]
        return child.draft(rng)

    def num_distinct(self) -> int | None:
        counts = [child.num_distinct() for child in self.children]
        return None if None in counts else sum(counts)  # type: ignore[arg-type]

    def base_games(self) -> list[GameConfig]:
        return [game for child in self.children for game in child.base_games()]

    def root_names(self) -> set[str]:
        return set().union(*(child.root_names() for child in self.children))


@dataclass(frozen=True)
class Bucket:
    path: str
    label: str
    values: list[Any] | None = None
    """Drawn uniformly; None for a range."""
    low: float = 0.0
    high: float = 0.0
    integer: bool = False
    """Range only: draw an integer in [ceil(low), floor(high)]."""

    def sample(self, rng: np.random.Generator) -> Any:
        if self.values is not None:
            return self.values[rng.integers(len(self.values))]
        if self.integer:
            return int(rng.integers(math.ceil(self.low), math.floor(self.high) + 1))
        rounded = float(f"{rng.uniform(self.low, self.high):.4g}")
        return min(max(rounded, self.low), self.high)  # rounding must not leave the range

    def num_distinct(self) -> int | None:
        if self.values is not None:
            return len({json.dumps(v, sort_keys=True) for v in self.values})
        if self.integer:
            return math.floor(self.high) - math.ceil(self.low) + 1
        return None if self.high > self.low else 1


class BucketedTaskGenerator(TaskGenerator):
    def __init__(self, child: TaskGenerator, buckets: dict[str, list[Any] | RangeConfig]):
        if not buckets:
            raise ValueError("a bucketed task generator needs at least one bucket")
        self.child = child
        labels = short_labels(list(buckets))
        games = child.base_games()
        # Drawn (and named) in the order of their paths, not the dict's: a config file read
        # back (keys sorted) must draw the same tasks as the recipe it was written from.
        self.buckets = [_make_bucket(path, labels[path], buckets[path], games) for path in sorted(buckets)]

    def draft(self, rng: np.random.Generator) -> TaskDraft:
        child = self.child.draft(rng)
        overrides = dict(child.overrides)
        changes = []
        for bucket in self.buckets:
            value = bucket.sample(rng)
            if child.value_at(bucket.path) != value:
                changes.append(f"{bucket.label}={format_value(value)}")
            overrides[bucket.path] = value
        name = f"{child.name}/{','.join(changes)}" if changes else child.name
        return TaskDraft(name, child.base, overrides)

    def num_distinct(self) -> int | None:
        counts = [self.child.num_distinct()] + [b.num_distinct() for b in self.buckets]
        return None if None in counts else math.prod(counts)  # type: ignore[arg-type]

    def base_games(self) -> list[GameConfig]:
        return self.child.base_games()

    def root_names(self) -> set[str]:
        return self.child.root_names()


def _make_bucket(
    path: str, label: str, spec: list[Any] | RangeConfig, games: list[GameConfig]
) -> Bucket:
    """Check a bucket against every game it may change, so a bad path or value fails now."""
    if isinstance(spec, RangeConfig):
        if spec.high < spec.low:
            raise ValueError(f"curriculum bucket {path!r}: range low={spec.low} > high={spec.high}")
        current = get_path(games[0], path)
        integer = isinstance(current, int) and not isinstance(current, bool)
        if integer and math.ceil(spec.low) > math.floor(spec.high):
            raise ValueError(
                f"curriculum bucket {path!r} takes integers but the range [{spec.low}, "
                f"{spec.high}] contains none"
            )
        bucket = Bucket(path, label, low=spec.low, high=spec.high, integer=integer)
        if integer:
            probes: list[Any] = [math.ceil(spec.low), math.floor(spec.high)]
        else:
            # A non-integral point too: a field that takes only integers refuses it now.
            probes = [spec.low, spec.high, spec.low + 0.37 * (spec.high - spec.low)]
    else:
        if not spec:
            raise ValueError(f"curriculum bucket {path!r} has an empty list of values")
        bucket = Bucket(path, label, values=list(spec))
        probes = list(spec)
    for game in games:
        for value in probes:
            try:
                apply_overrides(game, {path: value})
            except OverrideError as err:
                raise ValueError(f"curriculum bucket {path!r} (value {value!r}): {err}") from None
    return bucket


def make_task_generator(
    config: SingleTaskConfig | BucketedTaskConfig | TaskSetConfig, base_game: GameConfig
) -> TaskGenerator:
    """Build the generator a `CurriculumConfig.tasks` describes; `base_game` is the run's game."""
    if isinstance(config, SingleTaskConfig):
        return SingleTaskGenerator(config.name, config.game or base_game)
    if isinstance(config, BucketedTaskConfig):
        return BucketedTaskGenerator(make_task_generator(config.child, base_game), config.buckets)
    if isinstance(config, TaskSetConfig):
        children = [make_task_generator(c.generator, base_game) for c in config.children]
        return TaskSetGenerator(children, [c.weight for c in config.children])
    raise TypeError(f"unknown task generator config {type(config).__name__}")
