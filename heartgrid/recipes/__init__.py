from heartgrid.recipes.registry import UnknownRecipeError, all_recipes, get_recipe, recipe

__all__ = ["UnknownRecipeError", "all_recipes", "get_recipe", "recipe"]
