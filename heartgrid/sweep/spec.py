"""A sweep's definition: from the command line or a YAML/JSON file, validated like configs.

    recipe: small_cardinal
    overrides: [system.torch_threads=1]
    params:
      trainer.optimizer.learning_rate: log:1e-4:3e-3
      trainer.ent_coef: uniform:0:0.02
    metric: env_agent/heart.get          # late: by default (objective.py)
    direction: maximize
    steps: 1000000                       # trainer.total_timesteps of every trial
    trials: 40
    cost: steps                          # optional second objective: steps | time
    pruner: median                       # median | hyperband | none
    sampler: tpe                         # tpe | random
    seed: 0

An unknown key or a wrong value is refused with the config loader's messages (did-you-mean
included). Options given on the command line replace the file's (`--param` adds to its params).

The *identity* of a sweep is what decides its trials' configs and scores: recipe, overrides,
params, steps, metric, direction and cost. It is stored with the study; the same command (or
a worker on another machine) may continue a sweep only with the same identity. The budget
(trials), the sampler, its seed and the pruner may change from one start to the next.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from heartgrid.config.base import Config
from heartgrid.config.overrides import split_override, validation_message
from heartgrid.config.run import RunConfig
from heartgrid.errors import UsageError
from heartgrid.recipes import build_config
from heartgrid.sweep.objective import Objective
from heartgrid.sweep.params import RESERVED_KEYS, ParamSpec, check_params, override, parse_params

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
IDENTITY = ("recipe", "overrides", "params", "steps", "metric", "direction", "cost")


class SweepSpec(Config):
    """Every field has a default, so that an unknown key in a file gets a did-you-mean."""

    recipe: str = ""
    """The recipe every trial trains (as in `heartgrid train RECIPE`)."""
    overrides: list[str] = []
    """key=value overrides applied to every trial, before its parameters."""
    params: dict[str, str] = {}
    """KEY -> DIST:ARGS, the searched parameters (params.py)."""
    metric: str = "env_agent/heart.get"
    direction: Literal["maximize", "minimize"] = "maximize"
    cost: Literal["steps", "time"] | None = None
    steps: int | None = Field(None, ge=1)
    trials: int | None = Field(None, ge=1)
    pruner: Literal["median", "hyperband", "none"] = "median"
    sampler: Literal["tpe", "random"] = "tpe"
    seed: int | None = None

    def identity(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        return {key: data[key] for key in IDENTITY}


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML or JSON sweep file (validated later, with the command line's)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise UsageError(f"--file {path}: cannot read it ({e.strerror or e})") from None
    import yaml

    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:  # yaml's errors are not ValueErrors
        raise UsageError(f"--file {path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {e}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--file {path}: expected a mapping of sweep settings (recipe, params, metric, ...)")
    return data


def make_spec(file_data: dict[str, Any], given: dict[str, Any], source: str = "the command line") -> SweepSpec:
    """The file's settings, then the command line's (`given`: only the options present);
    `source` says where they came from in an error (`--file lr.yaml and the command line`)."""
    data = dict(file_data)
    data.pop("name", None)  # the file may name its sweep; --name wins (see sweep_name)
    if "params" in given:
        data["params"] = {**(data.get("params") or {}), **given.pop("params")}
    if "overrides" in given:
        data["overrides"] = [*(data.get("overrides") or []), *given.pop("overrides")]
    data.update(given)
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as e:
        raise UsageError(f"the sweep's {validation_message(e)} (from {source})") from None


def sweep_name(name: str | None, file_data: dict[str, Any]) -> str:
    name = name or file_data.get("name")
    if not name:
        raise UsageError("a sweep needs a name: --name NAME (its files go to runs/sweeps/NAME)")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise UsageError(f"sweep name {name!r}: use letters, digits, '_', '.' and '-' (a folder name)")
    return name


@dataclass(frozen=True)
class Sweep:
    """A validated spec with what it means: parsed params, the objective, the base config."""

    name: str
    spec: SweepSpec
    params: list[ParamSpec]
    objective: Objective
    base_overrides: list[str]
    """The spec's overrides plus trainer.total_timesteps=STEPS when steps is given."""
    config: RunConfig
    """The base config (recipe + base_overrides), without any parameter."""

    @property
    def multi_objective(self) -> bool:
        return self.spec.cost is not None

    @property
    def total_timesteps(self) -> int:
        return self.config.trainer.total_timesteps

    @property
    def step_range(self) -> tuple[int, int]:
        """The fewest and the most agent steps a trial trains (trainer.total_timesteps may be
        a parameter: a cost-aware sweep searches the budget too)."""
        for param in self.params:
            if param.key == "trainer.total_timesteps":
                values = [int(v) for v in param.values_to_check()]
                return min(values), max(values)
        return self.total_timesteps, self.total_timesteps

    def trial_steps(self, values: dict[str, Any]) -> int:
        return int(values.get("trainer.total_timesteps", self.total_timesteps))

    def trial_overrides(self, values: dict[str, Any]) -> list[str]:
        """The overrides of one trial: the base, then its parameter values."""
        return [*self.base_overrides, *(override(p.key, values[p.key]) for p in self.params if p.key in values)]


def resolve(name: str, spec: SweepSpec) -> Sweep:
    """Check everything that can be checked before training; UsageError (exit 2) otherwise."""
    if not spec.recipe:
        raise UsageError("the sweep names no recipe: heartgrid sweep RECIPE --name NAME --param KEY=DIST:ARGS ...")
    if not spec.params:
        raise UsageError("the sweep searches no parameter; add --param KEY=DIST:ARGS, e.g. "
                         "--param trainer.optimizer.learning_rate=log:1e-4:3e-3")
    keys = [split_override(item)[0] for item in spec.overrides]
    for key in keys:
        if key in RESERVED_KEYS:
            raise UsageError(f"override {key}=...: the sweep names and places each trial's run itself")
    params = parse_params([f"{key}={dist}" for key, dist in spec.params.items()])
    base = list(spec.overrides)
    if spec.steps is not None:
        taken = [k for k in [*keys, *spec.params] if k == "trainer.total_timesteps"]
        if taken:
            raise UsageError("--steps and trainer.total_timesteps are both given; keep one of them")
        base.append(f"trainer.total_timesteps={spec.steps}")
    config = build_config(spec.recipe, base)
    check_params(params, config, base)
    objective = Objective.parse(spec.metric, spec.direction)
    # Stored in canonical form, so that `1e-4` and `0.0001` are one identity.
    canonical = spec.model_copy(update={"params": {p.key: p.text for p in params}, "metric": objective.text})
    return Sweep(name, canonical, params, objective, base, config)
