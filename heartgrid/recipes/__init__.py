"""Recipes: named functions `recipe(device) -> RunConfig`, and `build_config` (recipe + overrides).

The built-in recipe modules are imported here, in this one place: importing a module registers
its recipes (`@recipe`), and the registry itself imports none of its users.
"""

from heartgrid.recipes.registry import UnknownRecipeError, all_recipes, get_recipe, recipe

from heartgrid.recipes import arena, navigation, small  # noqa: E402,F401  (registers them)
from heartgrid.recipes.build import build_config  # noqa: E402

__all__ = ["UnknownRecipeError", "all_recipes", "build_config", "get_recipe", "recipe"]
