"""The development suite: every recipe trains, the dev/validation split follows its rule, and a
recipe's cached grid is keyed on its code."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import shutil
import sys
import types
from pathlib import Path

import pytest

from benchmarks import reference
from benchmarks.recipes import RECIPES, get_recipe, half_of, recipe_names
from benchmarks.recipes import _images, _tabular
from benchmarks.recipes._recipe import _code_of
from benchmarks.recipes._suite import FRESH, SUITE
from lrtune.exceptions import LrtuneError
from lrtune.tasks import train


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_learns_in_thirty_steps_at_the_middle_of_its_range(name):
    task = get_recipe(name)
    low, high = task.recipe.search_range
    untrained = task.evaluate(task.make_model(0))
    result = train(task, math.sqrt(low * high), steps=30, seed=0)
    assert result.steps_done == 30 and not result.diverged
    assert result.val_loss < untrained


def test_the_suite_covers_the_axes_it_promises():
    recipes = list(SUITE)
    assert len(recipes) >= 16
    assert {"sgd", "sgd-plain", "sgd-nesterov", "adam", "adamw", "rmsprop", "adagrad"} <= {
        r.optimizer for r in recipes}
    assert {"constant", "multistep", "cosine", "linear", "one-cycle", "wsd"} <= {
        r.schedule for r in recipes}
    assert any(r.schedule == "cosine" and r.warmup > 0 for r in recipes)
    assert any(r.grad_clip is not None for r in recipes)
    assert min(r.batch_size for r in recipes) <= 8 and max(r.batch_size for r in recipes) >= 512


def test_the_split_sorts_by_name_and_alternates_and_the_halves_are_disjoint():
    names = sorted(r.name for r in SUITE)
    dev, validation = recipe_names("dev"), recipe_names("validation")
    assert dev == names[0::2] and validation == names[1::2]
    assert not set(dev) & set(validation) and sorted(dev + validation) == names
    assert all(half_of(n) == "dev" for n in dev)
    # the rule depends on the names only, not on the order the suite lists them in
    assert half_of(names[2], tuple(reversed(names))) == "dev"


def test_the_fresh_set_stays_outside_the_split_and_does_not_move_it():
    fresh = recipe_names("fresh")
    assert fresh == sorted(r.name for r in FRESH) and len(fresh) >= 6
    assert not set(fresh) & set(recipe_names("dev") + recipe_names("validation"))
    assert all(half_of(n) == "fresh" for n in fresh)
    assert sorted(recipe_names()) == sorted(RECIPES) == sorted([*recipe_names("dev"),
                                                                 *recipe_names("validation"),
                                                                 *fresh,
                                                                 *recipe_names("dev-constant")])


def test_the_constant_lr_set_is_the_dev_half_decaying_recipes_at_a_constant_lr():
    variants = recipe_names("dev-constant")
    decaying = [n for n in recipe_names("dev") if RECIPES[n].schedule != "constant"]
    assert variants == sorted(f"{n}-at-constant" for n in decaying) and len(variants) >= 6
    assert not set(variants) & {r.name for r in (*SUITE, *FRESH)}
    for name in decaying:
        original, variant = RECIPES[name], RECIPES[f"{name}-at-constant"]
        assert (variant.schedule, variant.schedule_args, variant.warmup) == ("constant", (), 0.0)
        # everything else is the dev recipe's: same data, model, optimizer, run and range
        assert dataclasses.replace(variant, name=name, regime=original.regime,
                                   schedule=original.schedule,
                                   schedule_args=original.schedule_args,
                                   warmup=original.warmup) == original


def test_an_unknown_half_or_recipe_gets_a_clear_error():
    with pytest.raises(LrtuneError, match="The 'half' parameter of recipe_names()"):
        recipe_names("test")
    with pytest.raises(ValueError, match="The 'name' parameter of get_recipe()"):
        get_recipe("no-such-recipe")


def test_the_cache_key_follows_the_row_and_is_stable():
    recipe = RECIPES["wine-linear-adagrad-constant"]
    assert recipe.version() == dataclasses.replace(recipe).version()
    assert dataclasses.replace(recipe, steps=121).version() != recipe.version()
    assert dataclasses.replace(recipe, lr_range=(1e-3, 10.0)).version() != recipe.version()


def test_the_cache_key_changes_when_a_builder_module_is_edited(tmp_path):
    path = tmp_path / "suite_builder_probe.py"
    path.write_text("from torch import nn\n\ndef model(split):\n    return nn.Linear(13, 3)\n")
    spec = importlib.util.spec_from_file_location("suite_builder_probe", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        recipe = dataclasses.replace(RECIPES["wine-linear-adagrad-constant"], model=module.model)
        before = recipe.version()
        path.write_text(path.read_text().replace("13, 3", "13, 3, bias=False"))
        assert recipe.version() != before
    finally:
        del sys.modules[spec.name]


def test_the_key_covers_the_project_modules_a_builder_takes_names_from():
    # the image recipes take their digits from the tabular module: editing it must reach them
    assert _tabular in _code_of(_images.digit_images)


def test_a_grid_cache_from_other_code_is_not_read(tmp_path, monkeypatch):
    name = "wine-linear-adagrad-constant"
    monkeypatch.setattr(reference, "OUT", tmp_path)
    saved = {"runs": {f"{0.1:.6e}|0": 0.123}}
    path = tmp_path / f"grid_{name}.json"
    path.write_text(json.dumps({**saved, "version": reference.task_version(name)}))
    assert reference.RunCache(name).runs == saved["runs"]
    path.write_text(json.dumps({**saved, "version": "0.0+stale"}))
    assert reference.RunCache(name).runs == {}


def test_grid_caches_are_keyed_on_the_divergence_monitor_too(tmp_path, monkeypatch):
    """An edit of either module that decides when a run is stopped as diverged changes the key."""
    names = ("digits", "wine-linear-adagrad-constant")
    for module in ("_monitor", "_divergence"):
        copy = tmp_path / f"{module}.py"
        shutil.copy(Path(getattr(reference, module).__file__), copy)
        stand_in = types.ModuleType(module)
        stand_in.__file__ = str(copy)
        monkeypatch.setattr(reference, module, stand_in)
    before = [reference.task_version(n) for n in names]
    for module in ("_monitor", "_divergence"):
        copy = tmp_path / f"{module}.py"
        copy.write_text(copy.read_text() + "\n# an edit\n")
        after = [reference.task_version(n) for n in names]
        assert before[0] != after[0] and before[1] != after[1]
        before = after


def test_recipe_grids_span_the_recipe_range_with_at_least_twenty_points():
    for name, recipe in RECIPES.items():
        lrs = reference.grid_lrs(name)
        assert len(lrs) >= 20
        assert (lrs[0], lrs[-1]) == pytest.approx(recipe.search_range)

