"""Dotted `key=value` overrides, applied to a typed config with precise error messages.

`trainer.minibatch_size=8192`, `game.agent.rewards.ore_red=0.2` (a dict key),
`game.map.room.rows.0=#####` (a list index) or `trainer.schedules={"ent_coef": {...}}` (JSON);
`trainer.target_kl=null` sets None.
Values are parsed as JSON when they parse, else taken as strings; pydantic then validates the
whole config, so a value can never bypass a validator.

An unknown key is answered with the nearest paths anywhere in the config, not only at its own
level: `trainer.learnig_rate` → `trainer.optimizer.learning_rate`, `ent_coef` →
`trainer.ent_coef`. A newcomer rarely knows which section a setting lives in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from difflib import SequenceMatcher
from typing import Any

from pydantic import BaseModel, ValidationError

from heartgrid.config.base import Config


class OverrideError(ValueError):
    """A bad override: unknown key or wrong value. The CLI maps it to exit status 2."""


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # `null` (JSON) is None; the word `none` stays a string, since some fields take it
        # as a value (logging.console=none).
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return text


def split_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise OverrideError(f"override {item!r} is not of the form key=value")
    key, _, raw = item.partition("=")
    key = key.strip()
    if not key:
        raise OverrideError(f"override {item!r} has an empty key")
    return key, parse_value(raw)


# A name counts as "like" another from difflib's usual cutoff (`lr` matches nothing, `gama`
# matches `gamma`); a whole dotted path only when nearly equal, since a shared section prefix
# (`trainer.`) alone makes two paths look alike.
NAME_CUTOFF = 0.6
PATH_CUTOFF = 0.85
# Suggestions are the best one and those ranked nearly as well (a name found in two sections);
# a name that only shares a generic last component (`cooldown`) with the best falls behind.
RANK_MARGIN = 0.1
MAX_SUGGESTIONS = 3


def config_paths(tree: Any, prefix: str = "") -> list[str]:
    """Every dotted path of a dumped config, sections included: `trainer.optimizer` as well as
    `trainer.optimizer.learning_rate`. Dict keys (`game.objects.altar`) count as names; lists are
    entered only when they hold objects (a map's rows are values, not names)."""
    if isinstance(tree, dict):
        items: Iterable[tuple[Any, Any]] = tree.items()
    elif isinstance(tree, list) and any(isinstance(v, dict) for v in tree):
        items = enumerate(tree)
    else:
        return []
    paths = []
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        paths.append(path)
        paths.extend(config_paths(value, path))
    return paths


def closest_paths(key: str, paths: Iterable[str]) -> list[str]:
    """The paths most like the mistyped dotted `key`, best first: by the last component (the
    setting's name, wherever it lives) and by the whole path (a misspelled section)."""
    name = key.rsplit(".", 1)[-1]
    ranked = []
    for path in paths:
        if key.startswith(f"{path}."):
            continue  # the section the key is already in: near by path, and no help
        by_name = SequenceMatcher(None, name, path.rsplit(".", 1)[-1]).ratio()
        by_path = SequenceMatcher(None, key, path).ratio()
        if by_name >= NAME_CUTOFF or by_path >= PATH_CUTOFF:
            # The path score is added so that of two equal names the nearer path ranks first:
            # `game.max_step` prefers `game.max_steps` to a curriculum task's `max_steps`.
            ranked.append((max(by_name, by_path) + by_path, path))
    if not ranked:
        return []
    ranked.sort(key=lambda r: (-r[0], r[1]))
    best = ranked[0][0]
    return [path for score, path in ranked[:MAX_SUGGESTIONS] if score >= best - RANK_MARGIN]


def did_you_mean(key: str, tree: Any, depth: int | None = None) -> str:
    """`did you mean 'a' or 'b'?` for a dotted key whose part at `depth` (default: the last) is
    unknown, from the whole dumped config `tree`; '' if nothing is like it.

    The unknown part is matched, and the parts after it are kept where the corrected path has
    them: `game.objects.altr.cooldown` → `game.objects.altar.cooldown`, `trainer.optimiser.lr`
    → `trainer.optimizer`."""
    parts = key.split(".")
    depth = len(parts) - 1 if depth is None else depth
    rest = ".".join(parts[depth + 1 :])
    paths = config_paths(tree)
    known = set(paths)
    close = [
        f"{path}.{rest}" if rest and f"{path}.{rest}" in known else path
        for path in closest_paths(".".join(parts[: depth + 1]), paths)
    ]
    if not close and rest:
        close = closest_paths(key, paths)  # a wrong section: `trainer.foo.learning_rate`
    quoted = [repr(p) for p in dict.fromkeys(close)]
    if not quoted:
        return ""
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"did you mean {listed}?"


def _unknown_key(root: BaseModel, dotted: str, depth: int, valid: list[str]) -> OverrideError:
    # The hint comes first, where it is seen; the keys valid at this level follow in brackets.
    parts = dotted.split(".")
    hint = did_you_mean(dotted, root.model_dump(), depth)
    where = ".".join(parts[:depth]) or "the top level"
    return OverrideError(
        f"unknown config key {parts[depth]!r} at {where}; "
        f"{hint or 'no key anywhere in the config is like it'} (valid keys at {where}: {', '.join(sorted(valid))})"
    )


def _check_path(model: BaseModel, dotted: str) -> None:
    """Walk the live config along `dotted`, refusing a key that does not exist at its level."""
    node: Any = model
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        here = ".".join(parts[:depth])
        last = depth == len(parts) - 1
        if isinstance(node, BaseModel):
            fields = list(type(node).model_fields)
            if part not in fields:
                raise _unknown_key(model, dotted, depth, fields)
            annotation = str(type(node).model_fields[part].annotation)
            node = getattr(node, part)
            if node is None and annotation.startswith("dict["):
                node = {}  # an optional dict that is None (inherit) takes new keys
        elif isinstance(node, dict):
            if part not in node:
                if last:
                    return  # a new dict key; the field's validator judges it
                raise _unknown_key(model, dotted, depth, list(node))
            node = node[part]
        elif isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise OverrideError(f"{here} is a list of {len(node)}; {part!r} is not a valid index")
            node = node[int(part)]
        else:
            raise OverrideError(f"{here} is a {type(node).__name__} value and has no key {part!r}")


def _set(data: Any, parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        if isinstance(data, list):
            data = data[int(part)]
        else:
            if data.get(part) is None:
                data[part] = {}  # an optional dict that was None
            data = data[part]
    last = parts[-1]
    if isinstance(data, list):
        data[int(last)] = value
    else:
        data[last] = value


def _describe(error: ValidationError, overrides: dict[str, Any], tree: Any = None) -> str:
    """One line per error; an unknown key (`extra="forbid"`) gets the nearest paths of `tree`,
    the dumped config it was meant for."""
    lines = []
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        given = f" (given {overrides[loc]!r})" if loc in overrides else ""
        kind = err["type"]
        expected = {
            "int_parsing": "an integer",
            "int_from_float": "an integer",
            "float_parsing": "a number",
            "bool_parsing": "true or false",
            "string_type": "a string",
            "dict_type": "a JSON object",
            "list_type": "a JSON list",
            "literal_error": "one of the listed values",
        }.get(kind)
        msg = err["msg"]
        if expected:
            msg = f"{msg}; expected {expected}"
        if kind == "extra_forbidden" and tree is not None:
            msg = f"unknown key; {did_you_mean(loc, tree) or 'no key anywhere in the config is like it'}"
        lines.append(f"{loc or '<config>'}: {msg}{given}")
    return "invalid config:\n  " + "\n  ".join(lines)


def apply_overrides(config: BaseModel, items: list[str] | dict[str, Any]) -> BaseModel:
    """Return a new, validated config with the dotted overrides applied, in order."""
    pairs = list(items.items()) if isinstance(items, dict) else [split_override(i) for i in items]
    data = config.model_dump(mode="json")
    current = config
    for key, value in pairs:
        _check_path(current, key)
        _set(data, key.split("."), value)
        # Validate after each override so that later keys are checked against the structure
        # the earlier ones made; an intermediate state may break a cross-field rule (batch
        # size before minibatch size), so only the final state has to be valid.
        try:
            current = type(config).model_validate(data)
        except ValidationError:
            pass
    try:
        return type(config).model_validate(data)
    except ValidationError as e:
        # A JSON value may carry an unknown key: `trainer.optimizer={"lr": 0.1}`.
        raise OverrideError(_describe(e, dict(pairs), config.model_dump())) from None


def validation_message(error: ValidationError) -> str:
    """The errors of validating a config (a config.json, say), one line each."""
    return _describe(error, {}, _default_tree(error.title))


def _default_tree(model_name: str) -> Any:
    """The dumped default config of the Config model named `model_name` (a ValidationError
    names its model, not its class): the paths an unknown key in a file is matched against.
    None when no such model exists or it has required fields."""
    pending: list[type[Config]] = [Config]
    while pending:
        cls = pending.pop()
        if cls.__name__ == model_name:
            try:
                return cls().model_dump()
            except ValidationError:
                return None
        pending.extend(cls.__subclasses__())
    return None
