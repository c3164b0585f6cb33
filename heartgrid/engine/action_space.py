"""The flat discrete action space over enabled (action type, argument) pairs (SPEC §1.2).

Action types are numbered over the *enabled* actions in the order of `ActionsConfig`; the flat
space lists every (type, arg) pair of those in order, named `<action>_<arg>` (`move_0`,
`rotate_3`, `noop_0`). Policies embed these names, so a policy survives a changed action set.
"""

from __future__ import annotations

from dataclasses import dataclass

from heartgrid.config.game import ACTION_ARGS, GameConfig


@dataclass(frozen=True)
class ActionSpace:
    type_names: tuple[str, ...]  # enabled action types, index = action type id
    type_num_args: tuple[int, ...]
    flat: tuple[tuple[int, int], ...]  # flat index -> (type id, arg)

    @classmethod
    def from_game(cls, game: GameConfig) -> ActionSpace:
        names = tuple(n for n in ACTION_ARGS if getattr(game.actions, n).enabled)
        nargs = tuple(ACTION_ARGS[n] for n in names)
        flat = tuple((t, a) for t, n in enumerate(nargs) for a in range(n))
        return cls(names, nargs, flat)

    @property
    def names(self) -> list[str]:
        return [f"{self.type_names[t]}_{a}" for t, a in self.flat]

    def __len__(self) -> int:
        return len(self.flat)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def type_id(self, action: str) -> int:
        return self.type_names.index(action)
