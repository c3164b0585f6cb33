"""The named observation-feature registry (SPEC §1.4).

An observation is `uint8[features, obs_height, obs_width]` per agent. Each plane is a feature
with a stable name, an id (its plane index) and a normalisation (policies divide by it).
Policies receive the registry, not bare ids, so a checkpoint can remap features by name when
ids move, and ignore features it has never seen.

Decision (ours): the `type_id` plane stores `type_id + 1` for occupied cells and 0 for empty
ones. The SPEC gives the agent type id 0, which in a dense plane would be indistinguishable
from an empty cell; cells outside the grid read as walls (1 + 1 = 2).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from heartgrid.config.items import ITEMS


@dataclass(frozen=True)
class Feature:
    name: str
    id: int
    normalization: float
    scope: str  # "cell": per grid cell; "global": written at the centre cell only

    def to_dict(self) -> dict:
        return asdict(self)


_CELL = [
    ("type_id", 1.0),
    ("agent:group", 10.0),
    ("agent:frozen", 1.0),
    ("agent:orientation", 1.0),
    ("agent:color", 255.0),
    ("converting", 1.0),
    ("swappable", 1.0),
] + [(f"inv:{item}", 100.0) for item in ITEMS]

_GLOBAL = [
    ("episode_completion_pct", 255.0),
    ("last_action", 10.0),
    ("last_action_arg", 10.0),
    ("last_reward", 100.0),
]


class FeatureRegistry:
    """Ordered features; `registry["inv:heart"].id` is that feature's plane."""

    def __init__(self, features: list[Feature]):
        self.features = list(features)
        self._by_name = {f.name: f for f in self.features}
        if len(self._by_name) != len(self.features):
            raise ValueError("feature names must be unique")
        if [f.id for f in self.features] != list(range(len(self.features))):
            raise ValueError("feature ids must be 0..n-1 in order")

    @classmethod
    def default(cls) -> FeatureRegistry:
        specs = [(n, norm, "cell") for n, norm in _CELL] + [(n, norm, "global") for n, norm in _GLOBAL]
        return cls([Feature(n, i, norm, scope) for i, (n, norm, scope) in enumerate(specs)])

    @classmethod
    def from_list(cls, items: list[dict]) -> FeatureRegistry:
        return cls([Feature(**d) for d in items])

    def to_list(self) -> list[dict]:
        return [f.to_dict() for f in self.features]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, name: str) -> Feature:
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self.features)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]
