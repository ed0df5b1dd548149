"""The development suite of training recipes, split once and for all into two halves.

Rules and constants of a strategy are chosen on the development half; the validation half is run
once a change is decided, to see whether it generalises. The split is fixed by a rule written down
before any tuning: sort the recipes by name and alternate, the first going to development. Adding
a recipe moves the ones sorted after it, so the suite is frozen while a change is being judged.

A third set, ``"fresh"``, holds recipes written after the rules were chosen (see ``FRESH`` in
``_suite.py``): outside the split, run once to check that a result generalises, never tuned on.
A fourth, ``"dev-constant"``, is development material: the dev half's recipes whose schedule
decays, run at a constant LR instead (:func:`~benchmarks.recipes._suite.at_constant_lr`).

>>> from benchmarks.recipes import get_recipe, recipe_names
>>> task = get_recipe("iris-mlp-adamw-warmup-cosine")   # an lrtune.tasks.Task
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from benchmarks.recipes._recipe import Recipe, RecipeTask
from benchmarks.recipes._suite import FRESH, SUITE, at_constant_lr
from lrtune._validation import check_choice

HALVES = ("dev", "validation")
SETS = (*HALVES, "fresh", "dev-constant")
_SPLIT = tuple(r.name for r in SUITE)  # the names the halves are split over


def _split_half(name: str, names: tuple[str, ...]) -> str:
    return HALVES[sorted(names).index(name) % 2]


DEV_CONSTANT: tuple[Recipe, ...] = tuple(
    at_constant_lr(r) for r in SUITE
    if _split_half(r.name, _SPLIT) == "dev" and r.schedule != "constant")
_OUTSIDE_SPLIT = {**{r.name: "fresh" for r in FRESH},
                  **{r.name: "dev-constant" for r in DEV_CONSTANT}}
RECIPES: Mapping[str, Recipe] = MappingProxyType(
    {r.name: r for r in (*SUITE, *FRESH, *DEV_CONSTANT)})


def half_of(name: str, names: tuple[str, ...] = _SPLIT) -> str:
    """``"dev"`` or ``"validation"``: the recipe's place among ``names`` sorted, alternating;
    ``"fresh"`` or ``"dev-constant"`` for a recipe of those sets."""
    if name in _OUTSIDE_SPLIT:
        return _OUTSIDE_SPLIT[name]
    return _split_half(name, names)


def recipe_names(half: str | None = None) -> list[str]:
    """Recipe names, sorted; only those of ``half`` (one of :data:`SETS`) if given."""
    if half is not None:
        check_choice(half, "half", "recipe_names()", SETS)
    return [n for n in sorted(RECIPES) if half is None or half_of(n) == half]


def set_name(suite: str) -> str:
    """How RESULTS.md names a set of :data:`SETS`: "dev half", "fresh set", ..."""
    return {"fresh": "fresh set", "dev-constant": "dev half at a constant LR"}.get(
        suite, f"{suite} half")


_tasks: dict[str, RecipeTask] = {}


def get_recipe(name: str) -> RecipeTask:
    """The recipe ``name`` as a task (one instance per process, so its data is built once)."""
    check_choice(name, "name", "get_recipe()", RECIPES)
    if name not in _tasks:
        _tasks[name] = RECIPES[name].task()
    return _tasks[name]


__all__ = ["DEV_CONSTANT", "HALVES", "RECIPES", "SETS", "Recipe", "RecipeTask", "get_recipe",
           "half_of", "recipe_names", "set_name"]
