"""The constant-LR carry benchmark: which tasks it runs, the fixed-exponent answers it scores."""

from __future__ import annotations

import math

import pytest

from benchmarks.horizon_carry import carried, constant_lr_tasks
from benchmarks.recipes import RECIPES, half_of
from lrtune.records import TrialRecord, TrialState
from lrtune.space import LogRange

RANGE = LogRange(1e-5, 1.0)


def rung(lrs, steps, tag, vertex, diverged=()):
    """Finite losses on a parabola in log-LR around ``vertex``; ``diverged`` LRs blew up."""
    trials = [TrialRecord(i, {"lr": lr}, steps, TrialState.COMPLETED,
                          1.0 + math.log(lr / vertex) ** 2, steps, tag=tag)
              for i, lr in enumerate(lrs)]
    return trials + [TrialRecord(len(trials) + i, {"lr": lr}, steps, TrialState.DIVERGED, None,
                                 1, tag=tag) for i, lr in enumerate(diverged)]


def test_the_refine_rung_vertex_is_carried_with_the_fixed_exponent():
    trials = rung([1e-3, 1e-2, 1e-1], 10, "scan:0", 1e-2) + rung([2e-3, 4e-3, 8e-3], 40, "refine",
                                                                  4e-3)
    assert carried(trials, 400, 0.0, RANGE) == pytest.approx(4e-3, rel=1e-6)
    assert carried(trials, 400, 0.5, RANGE) == pytest.approx(4e-3 / math.sqrt(10), rel=1e-6)


def test_a_carried_answer_is_capped_like_autos_and_needs_a_refine_rung():
    scan = rung([1e-3, 1e-2], 10, "scan:0", 1e-2, diverged=[1e-1])
    refine = rung([1e-2, 2e-2, 4e-2], 40, "refine", 2e-2)
    # beta = 0 would train at 0.02; a lattice step below the diverged 0.1 is 0.046, so no cap
    assert carried(scan + refine, 400, 0.0, RANGE) == pytest.approx(2e-2, rel=1e-6)
    assert carried(scan + refine, 400, -1.0, RANGE) == pytest.approx(0.1 / 10 ** (1 / 3))
    assert carried(scan + refine, 4e9, 1.0, RANGE) == RANGE.low
    assert carried(scan, 400, 0.5, RANGE) is None


def test_every_constant_lr_task_is_run_development_material_first():
    names = constant_lr_tasks()
    constant = {n for n, r in RECIPES.items() if r.schedule == "constant"} | {"diabetes"}
    assert set(names) == constant
    sets = ["built-in" if n == "diabetes" else half_of(n) for n in names]
    development = [s in ("dev", "dev-constant", "built-in") for s in sets]
    assert development == sorted(development, reverse=True) and sum(development) == 9
