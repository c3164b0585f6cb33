"""Flatten resolved configs to dotted paths and diff them.

(Reading a side of `heartgrid diff` — a recipe with overrides, a config JSON or a run
directory — is the CLI's job: `heartgrid.tools.config_cmd.resolve_side`.)
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel


# Paths that name a run rather than describe its behaviour (pass as `ignore=` to diff_configs).
RUN_IDENTITY_PATHS = ("run", "data_dir", "system.seed", "recipe")


def flatten(config: BaseModel | dict, prefix: str = "") -> dict[str, Any]:
    """Every leaf of the config as `dotted.path -> value` (lists of scalars stay whole)."""
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            # An empty dict contributes no leaves: `{}` vs `{"ore_red": 0.1}` then diffs as
            # the one added key rather than as a whole-dict change.
            out.update(flatten(value, f"{path}."))
        elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    out.update(flatten(item, f"{path}.{i}."))
                else:
                    out[f"{path}.{i}"] = item
        else:
            out[path] = value
    return out


_MISSING = object()


def diff_configs(
    a: BaseModel | dict, b: BaseModel | dict, *, ignore: tuple[str, ...] = ()
) -> list[tuple[str, Any, Any]]:
    """Sorted (path, value in a, value in b) for every differing leaf; absent leaves are `<absent>`."""
    fa, fb = flatten(a), flatten(b)
    rows = []
    for path in sorted(set(fa) | set(fb)):
        if path in ignore:
            continue
        va, vb = fa.get(path, _MISSING), fb.get(path, _MISSING)
        if va != vb:
            rows.append((path, "<absent>" if va is _MISSING else va, "<absent>" if vb is _MISSING else vb))
    return rows


def format_diff(rows: list[tuple[str, Any, Any]]) -> str:
    return "\n".join(f"{path}: {json.dumps(va)} -> {json.dumps(vb)}" for path, va, vb in rows)
