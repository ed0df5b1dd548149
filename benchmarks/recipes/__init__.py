"""The development suite of training recipes, split once and for all into two halves.

Rules and constants of a strategy are chosen on the development half; the validation half is run
once a change is decided, to see whether it generalises. The split is fixed by a rule written down
before any tuning: sort the recipes by name and alternate, the first going to development. Adding
a recipe moves the ones sorted after it, so the suite is frozen while a change is being judged.

A third set, ``"fresh"``, holds recipes written after the rules were chosen (see ``FRESH`` in
``_suite.py``): outside the split, run once to check that a result generalises, never tuned on.

>>> from benchmarks.recipes import get_recipe, recipe_names
>>> task = get_recipe("iris-mlp-adamw-warmup-cosine")   # an lrtune.tasks.Task
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from benchmarks.recipes._recipe import Recipe, RecipeTask
from benchmarks.recipes._suite import FRESH, SUITE
from lrtune._validation import check_choice

RECIPES: Mapping[str, Recipe] = MappingProxyType({r.name: r for r in (*SUITE, *FRESH)})
HALVES = ("dev", "validation")
SETS = (*HALVES, "fresh")
_SPLIT = tuple(r.name for r in SUITE)  # the names the halves are split over


def half_of(name: str, names: tuple[str, ...] = _SPLIT) -> str:
    """``"dev"`` or ``"validation"``: the recipe's place among ``names`` sorted, alternating;
    ``"fresh"`` for a recipe of the fresh set."""
    if name in RECIPES and name not in _SPLIT:
        return "fresh"
    return HALVES[sorted(names).index(name) % 2]


def recipe_names(half: str | None = None) -> list[str]:
    """Recipe names, sorted; only those of ``half`` (``"dev"``, ``"validation"`` or ``"fresh"``)
    if given."""
    if half is not None:
        check_choice(half, "half", "recipe_names()", SETS)
    return [n for n in sorted(RECIPES) if half is None or half_of(n) == half]


_tasks: dict[str, RecipeTask] = {}


def get_recipe(name: str) -> RecipeTask:
    """The recipe ``name`` as a task (one instance per process, so its data is built once)."""
    check_choice(name, "name", "get_recipe()", RECIPES)
    if name not in _tasks:
        _tasks[name] = RECIPES[name].task()
    return _tasks[name]


__all__ = ["HALVES", "RECIPES", "SETS", "Recipe", "RecipeTask", "get_recipe", "half_of",
           "recipe_names"]
