"""Recipes: plain Python functions registered by name that return a complete RunConfig.

A recipe receives the concrete device it will run on ("cpu" or "cuda[:N]") so it can choose
batch sizes that fit; everything it decides is written into the resolved config.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from heartgrid.config.run import RunConfig

RecipeFn = Callable[[str], RunConfig]


@dataclass(frozen=True)
class Recipe:
    name: str
    fn: RecipeFn

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.fn) or ""
        return doc.splitlines()[0] if doc else ""


_RECIPES: dict[str, Recipe] = {}


class UnknownRecipeError(KeyError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        close = difflib.get_close_matches(self.name, list(_RECIPES), n=1)
        available = ", ".join(sorted(_RECIPES))
        if close:
            return f"unknown recipe {self.name!r}; did you mean {close[0]!r}? (available recipes: {available})"
        return f"unknown recipe {self.name!r}; available recipes: {available}"


def recipe(name: str) -> Callable[[RecipeFn], RecipeFn]:
    def register(fn: RecipeFn) -> RecipeFn:
        if name in _RECIPES:
            raise ValueError(f"recipe {name!r} registered twice")
        _RECIPES[name] = Recipe(name, fn)
        return fn

    return register


def all_recipes() -> dict[str, Recipe]:
    return dict(sorted(_RECIPES.items()))


def get_recipe(name: str) -> Recipe:
    if name not in _RECIPES:
        raise UnknownRecipeError(name)
    return _RECIPES[name]
