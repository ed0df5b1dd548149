"""A trial's standing against the basin its study mapped, on a real grid study of digits."""

import dataclasses
import math

import pytest

import lrtune
from lrtune.diagnostics import standing, standings
from lrtune.records import TrialState
from lrtune.tasks import objective

STEPS = 150


@pytest.fixture(scope="module")
def grid_study(digits):
    return lrtune.tune(objective(digits), steps=STEPS, budget=6.0, strategy="grid",
                       space=lrtune.Space(lr=(1e-4, 3.0), optimizer="sgd"), seed=0)


@pytest.fixture(scope="module")
def grid_trials(grid_study):
    return sorted(grid_study.trials, key=lambda t: t.lr)


def test_every_trial_is_placed_against_the_best_of_the_grid(grid_trials):
    completed = [t for t in grid_trials if t.state is TrialState.COMPLETED]
    best = min(completed, key=lambda t: t.value)
    placed = {t.number: standing(t, grid_trials) for t in grid_trials}
    assert str(placed[best.number]) == "the best LR among the runs of its length"
    for trial in completed:
        s = placed[trial.number]
        assert s.best.number == best.number and s.lr_ratio == pytest.approx(trial.lr / best.lr)
        assert s.loss_ratio == pytest.approx(trial.value / best.value)
        start = sorted(t.history[0][1] for t in completed)[len(completed) // 2]
        assert s.gap == pytest.approx((trial.value - best.value) / (start - best.value))
        if trial is not best:
            expected = ("near the best" if s.gap < 0.1 and s.loss_ratio <= 1.5
                        else "too low" if trial.lr < best.lr else "too high")
            assert s.verdict == expected
    # the smallest LR barely learned in 150 steps: far from the best, on the low side
    lowest = placed[grid_trials[0].number]
    assert lowest.verdict == "too low" and lowest.gap > 0.5
    assert str(lowest).startswith(f"{1 / lowest.lr_ratio:.0f}x below the best LR found; final loss")
    # 5.6x above the best, at 3.2x its loss: too high, though only a tenth of the way to chance
    above = next(placed[t.number] for t in completed if t.lr > best.lr)
    assert above.gap < 0.1 and above.loss_ratio > 2 and above.verdict == "too high"


def test_a_run_that_blew_up_above_the_best_is_too_high(grid_trials):
    diverged = [t for t in grid_trials if t.state is TrialState.DIVERGED]
    assert diverged and all(t.lr > 1.0 for t in diverged)
    s = standing(diverged[0], grid_trials)
    assert s.verdict == "too high" and math.isinf(s.gap) and s.loss_ratio is None
    assert str(s).endswith("above the best LR found; diverged: too high")


def test_no_standing_before_three_peers_or_across_lengths(grid_trials):
    completed = [t for t in grid_trials if t.state is TrialState.COMPLETED]
    assert standing(completed[0], completed[:2]) is None
    shorter = [dataclasses.replace(t, steps=STEPS // 3) for t in completed]
    assert standing(completed[0], shorter) is None  # scan runs are not the full runs' peers


def test_every_standing_at_once_is_each_trials_own(grid_trials):
    # a report's table places every trial in one pass; the groups must come out as one at a time:
    # the grid's runs, two shorter ones (too few peers) and three under another optimizer
    shorter = [dataclasses.replace(t, steps=STEPS // 3, number=1000 + t.number)
               for t in grid_trials[:2]]
    adam = [dataclasses.replace(t, params={**t.params, "optimizer": "adam"},
                                number=2000 + t.number)
            for t in grid_trials if t.state is TrialState.COMPLETED][:3]
    trials = [*grid_trials, *shorter, *adam]
    placed = standings(trials)
    assert placed == {t.number: standing(t, trials) for t in trials}
    assert all(placed[t.number] is None for t in shorter)
    best_adam = min(adam, key=lambda t: t.value)  # among its own optimizer's runs only
    assert {placed[t.number].best.number for t in adam} == {best_adam.number}


def test_show_and_the_progress_lines_carry_the_standing(grid_study):
    from lrtune.progress import trial_line
    from lrtune.report import report_data

    trials = grid_study.trials
    rows = {r["number"]: r["standing"] for r in report_data(grid_study).rows}
    assert rows == {t.number: str(standing(t, trials)) for t in trials}
    line = trial_line(trials[-1], grid_study.best, standing(trials[-1], trials))
    assert line.endswith(str(standing(trials[-1], trials)))
