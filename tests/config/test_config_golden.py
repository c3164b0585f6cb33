"""Golden resolved configs: a change to any recipe's resolved config fails here with its diff.

Regenerate after an intended change with:  heartgrid golden tests/golden
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heartgrid.config.diff import diff_configs, format_diff
from heartgrid.recipes import all_recipes
from heartgrid.tools.config_cmd import golden_configs

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CURRENT = golden_configs()


def test_every_recipe_has_a_golden_file():
    stored = {p.stem for p in GOLDEN.glob("*.json")}
    assert stored == set(all_recipes()), (
        "tests/golden/ does not match the registered recipes; run `heartgrid golden tests/golden`"
    )


@pytest.mark.parametrize("recipe", sorted(CURRENT))
def test_resolved_config_matches_golden(recipe):
    path = GOLDEN / f"{recipe}.json"
    assert path.exists(), f"missing {path}; run `heartgrid golden tests/golden`"
    rows = diff_configs(json.loads(path.read_text()), json.loads(CURRENT[recipe]))
    assert not rows, (
        f"the resolved config of {recipe!r} changed (golden -> now):\n{format_diff(rows)}\n"
        "If intended, run `heartgrid golden tests/golden` and commit the diff."
    )
