"""Dotted `key=value` overrides, applied to a typed config with precise error messages.

`trainer.minibatch_size=8192`, `game.agent.rewards.ore_red=0.2` (a dict key),
`game.map.room.rows.0=#####` (a list index) or `trainer.schedules={"ent_coef": {...}}` (JSON);
`trainer.target_kl=null` sets None.
Values are parsed as JSON when they parse, else taken as strings; pydantic then validates the
whole config, so a value can never bypass a validator.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from pydantic import BaseModel, ValidationError


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


def _unknown_key(path: str, key: str, valid: list[str]) -> OverrideError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    where = path or "the top level"
    return OverrideError(
        f"unknown config key {key!r} at {where}; valid keys: {', '.join(sorted(valid))}{hint}"
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
                raise _unknown_key(here, part, fields)
            annotation = str(type(node).model_fields[part].annotation)
            node = getattr(node, part)
            if node is None and annotation.startswith("dict["):
                node = {}  # an optional dict that is None (inherit) takes new keys
        elif isinstance(node, dict):
            if part not in node:
                if last:
                    return  # a new dict key; the field's validator judges it
                raise _unknown_key(here, part, list(node))
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


def _describe(error: ValidationError, overrides: dict[str, Any]) -> str:
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
        raise OverrideError(_describe(e, dict(pairs))) from None


def validation_message(error: ValidationError) -> str:
    return _describe(error, {})
