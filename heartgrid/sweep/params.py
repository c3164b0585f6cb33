"""The searched parameters: `KEY=DIST:ARGS`, parsed, checked against the config, and sampled.

    trainer.optimizer.learning_rate=log:1e-4:3e-3     float, log-uniform (alias loguniform)
    trainer.ent_coef=uniform:0:0.02                   float, uniform
    trainer.update_epochs=int:1:4                     integer, uniform; int:LOW:HIGH:STEP for a step
    trainer.minibatch_size=logint:256:4096            integer, log-uniform
    policy.name=choice:fast,latent_attn_tiny          one of the values (parsed like overrides)

KEY is a dotted config path, exactly as in `heartgrid train` overrides; it is also the name of
the parameter in the Optuna study. Every mistake is a UsageError (exit status 2) that says what
to write instead: an unknown key gets the config's did-you-mean, an unknown distribution the
list of valid ones, bounds in the wrong order the spec with them swapped.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from typing import Any

from heartgrid.config.overrides import OverrideError, apply_overrides, parse_value
from heartgrid.config.run import RunConfig
from heartgrid.errors import UsageError

# The distributions, with the form each is written in (the error messages quote these).
FORMS = {
    "log": "log:LOW:HIGH",
    "uniform": "uniform:LOW:HIGH",
    "int": "int:LOW:HIGH[:STEP]",
    "logint": "logint:LOW:HIGH",
    "choice": "choice:A,B[,...]",
}
ALIASES = {"loguniform": "log", "categorical": "choice"}

# A trial's run name and place are the sweep's to choose (runs/sweeps/NAME/runs/NAME-tNNN).
RESERVED_KEYS = ("run", "data_dir")


@dataclass(frozen=True)
class ParamSpec:
    key: str
    dist: str
    """One of FORMS (aliases resolved)."""
    low: float | int | None = None
    high: float | int | None = None
    step: int | None = None
    choices: tuple[Any, ...] = ()

    @property
    def text(self) -> str:
        """The canonical spec, as stored with the study: parsing it gives this spec back."""
        if self.dist == "choice":
            return "choice:" + ",".join(value_text(c) for c in self.choices)
        step = f":{self.step}" if self.step not in (None, 1) else ""
        return f"{self.dist}:{self.low!r}:{self.high!r}{step}"

    def values_to_check(self) -> list[Any]:
        """The values that must each make a valid config: both bounds, or every choice."""
        return list(self.choices) if self.dist == "choice" else [self.low, self.high]

    def suggest(self, trial: Any) -> Any:
        """Sample a value through an Optuna trial (a fixed value for an enqueued trial)."""
        if self.dist == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.dist in ("int", "logint"):
            return trial.suggest_int(self.key, int(self.low), int(self.high),  # type: ignore[arg-type]
                                     step=self.step or 1, log=self.dist == "logint")
        return trial.suggest_float(self.key, float(self.low), float(self.high),  # type: ignore[arg-type]
                                   log=self.dist == "log")


def value_text(value: Any) -> str:
    """A value as an override writes it: strings bare, everything else as JSON (floats exact)."""
    return value if isinstance(value, str) else json.dumps(value)


def override(key: str, value: Any) -> str:
    return f"{key}={value_text(value)}"


def _usage(item: str, problem: str, instead: str | None = None) -> UsageError:
    tail = f"; write {instead}" if instead else ""
    return UsageError(f"--param {item}: {problem}{tail}")


def _number(item: str, text: str, integer: bool) -> float | int:
    try:
        value = float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise _usage(item, f"{text!r} is not {kind}") from None
    if not math.isfinite(value):
        raise _usage(item, f"{text!r} is not a finite number")
    if integer:
        if value != int(value):
            raise _usage(item, f"{text!r} is not an integer", f"{item.split('=')[0]}=uniform:... for a float")
        return int(value)
    return value


def parse_param(item: str) -> ParamSpec:
    """`KEY=DIST:ARGS` -> ParamSpec; a UsageError says what is wrong and what to write."""
    key, eq, spec = item.partition("=")
    key = key.strip()
    if not eq or not key:
        raise _usage(item, "not of the form KEY=DIST:ARGS", "e.g. trainer.optimizer.learning_rate=log:1e-4:3e-3")
    if key in RESERVED_KEYS:
        raise _usage(item, f"{key} is chosen by the sweep (each trial is runs/sweeps/NAME/runs/NAME-tNNN)")
    name, _, args = spec.partition(":")
    dist = ALIASES.get(name, name)
    if dist not in FORMS:
        close = difflib.get_close_matches(name, [*FORMS, *ALIASES], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"--param {item}: unknown distribution {name!r}; {hint}(write {key}=DIST:ARGS "
                         f"with one of {', '.join(FORMS.values())})")
    form = f"{key}={FORMS[dist]}"
    if dist == "choice":
        return _parse_choice(item, key, args, form)
    parts = args.split(":")
    if len(parts) not in ((2, 3) if dist == "int" else (2,)):
        raise _usage(item, f"{dist} takes {FORMS[dist].count(':')} bounds", form)
    integer = dist in ("int", "logint")
    low, high = (_number(item, p, integer) for p in parts[:2])
    step = _number(item, parts[2], True) if len(parts) == 3 else None
    if low > high:
        swapped = f"{key}={dist}:{parts[1]}:{parts[0]}" + (f":{parts[2]}" if step is not None else "")
        raise _usage(item, f"low {parts[0]} is above high {parts[1]}", swapped)
    if low == high:
        raise _usage(item, f"low and high are both {parts[0]}: nothing to search",
                     f"a plain override {key}={parts[0]} (after the recipe), or a range")
    if dist in ("log", "logint") and low <= 0:
        raise _usage(item, f"a log scale needs low > 0 (got {parts[0]})",
                     f"{key}=uniform:{parts[0]}:{parts[1]} for a linear scale")
    if step is not None and (step < 1 or (high - low) % step):
        raise _usage(item, f"step {step} must be at least 1 and divide high - low = {high - low}", form)
    return ParamSpec(key, dist, low, high, step)


def _parse_choice(item: str, key: str, args: str, form: str) -> ParamSpec:
    choices = tuple(parse_value(text) for text in args.split(",")) if args else ()
    if len(choices) < 2:
        raise _usage(item, "a choice needs at least two values", form)
    for value in choices:
        if not (value is None or isinstance(value, (bool, int, float, str))):
            # Optuna's categorical values are scalars; a JSON list or object is not one.
            raise _usage(item, f"choice values must be numbers, strings, true/false or null (got {value!r})", form)
    if len({json.dumps(c) for c in choices}) != len(choices):
        raise _usage(item, "a value is listed twice", form)
    return ParamSpec(key, "choice", choices=choices)


def parse_params(items: list[str]) -> list[ParamSpec]:
    specs = [parse_param(item) for item in items]
    seen: set[str] = set()
    for spec in specs:
        if spec.key in seen:
            raise UsageError(f"--param {spec.key} is given twice; give each key once")
        seen.add(spec.key)
    return specs


def check_params(params: list[ParamSpec], config: RunConfig, overrides: list[str]) -> None:
    """Each parameter's every end value must make a valid config from the sweep's base config:
    an unknown key is found here, with the config's did-you-mean, before anything trains.
    (Each value is checked alone; combinations that conflict fail their trial instead.)"""
    overridden = {item.partition("=")[0].strip() for item in overrides}
    for param in params:
        if param.key in overridden:
            raise UsageError(f"{param.key} is both an override and a --param; keep one of them")
        for value in param.values_to_check():
            try:
                apply_overrides(config, {param.key: value})
            except OverrideError as e:
                raise UsageError(f"--param {param.key}: {e}") from None
