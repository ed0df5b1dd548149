"""Report data, checked number by number against the study it was read from."""

import json
import math

import optuna

import pytest

import lrtune
from lrtune.report import report_data
from lrtune.report._schedules import trial_schedule
from lrtune.schedules import Cosine, MultiStep, with_warmup
from lrtune.study._schema import from_storable


@pytest.fixture(scope="module")
def data(digits_study):
    _, url = digits_study
    return report_data(lrtune.load_study("digits", url))  # as a report sees it: from storage


@pytest.fixture(scope="module")
def trials(digits_study):
    return {t.number: t for t in digits_study[0].trials}


def test_the_basin_has_every_completed_trial_once_by_length_and_the_diverged_ones(data, trials):
    points = {p["number"]: (p["lr"], p["value"], rung["steps"])
              for rung in data.basin["rungs"] for p in rung["points"]}
    completed = {n: t for n, t in trials.items() if t.state.value == "completed"}
    assert points == {n: (t.lr, t.value, t.steps) for n, t in completed.items()}
    lengths = sorted({t.steps for t in completed.values()})
    assert [r["steps"] for r in data.basin["rungs"]] == lengths
    diverged = {d["number"]: d for d in data.basin["diverged"]}
    assert set(diverged) == {n for n, t in trials.items() if t.diverged} and diverged
    for number, d in diverged.items():  # marked at the LR that blew up, with the step it did
        assert d["lr"] == trials[number].lr
        assert 0 <= d["step"] < trials[number].steps_done
    best = data.basin["best"]
    assert best["number"] == max(trials) and trials[best["number"]].tag == "final"


def test_the_schedules_are_the_ones_each_trial_applied_compressed_to_its_length(data, trials):
    by_number = {s["number"]: s for s in data.schedules}
    assert set(by_number) == set(trials)
    for number, s in by_number.items():
        t = trials[number]
        lr = dict(zip(s["step"], s["value"]))
        assert s["step"][0] == 0 and s["step"][-1] == t.steps - 1
        assert lr[0] == pytest.approx(t.lr)
        # digits decays 10x at half and three quarters of *each trial's* run
        half, three_quarters = t.steps // 2, (3 * t.steps) // 4
        assert lr[min(s["step"], key=lambda x: abs(x - (half + three_quarters) // 2))] \
            == pytest.approx(t.lr / 10)
        assert lr[t.steps - 1] == pytest.approx(t.lr / 100)


def test_curves_progress_and_table_follow_the_trials(data, trials, digits_study):
    study = digits_study[0]
    assert {c["number"]: len(c["points"]) for c in data.curves} == {
        n: len(t.history) for n, t in trials.items()}
    spent = [p["spent"] for p in data.progress["points"]]
    assert spent == sorted(spent) and spent[-1] == pytest.approx(study.spent)
    best_so_far = [v for _, v in data.progress["best_so_far"]]
    assert best_so_far == sorted(best_so_far, reverse=True)
    assert best_so_far[-1] == min(t.value for t in trials.values() if t.value is not None)
    assert [r["number"] for r in data.rows] == sorted(trials)
    assert [r["number"] for r in data.rows if r["best"]] == [study.best.number]
    for row in data.rows:
        if trials[row["number"]].diverged:
            assert row["verdict"] == "diverged" and "exploded" in row["evidence"] + row["error"]
            assert row["hint"]


def test_the_recommendation_is_one_sentence_with_the_evidence(data, digits_study):
    study = digits_study[0]
    best = study.best
    sentence = data.recommendation
    assert sentence.startswith(f"Train with lr = {best.lr:.3g}: trial {best.number} reached")
    assert "after a full run" in sentence and "diverged, the lowest at lr = " in sentence
    assert f"spent {study.spent:.2f} of 2 runs" in sentence
    assert sentence.count(". ") == 0 and sentence.endswith(".")


def test_the_range_test_stored_with_the_study_is_in_the_report(data):
    rt = data.range_test
    assert rt is not None and len(rt["lr"]) == len(rt["loss"]) > 20
    low, high = rt["band"]
    assert low <= rt["suggestion"] <= high
    assert all(math.isfinite(v) for v in rt["smoothed"])


def test_schedule_objects_are_stored_as_their_description_and_read_back(tmp_path):
    schedule = with_warmup(Cosine(total_steps=64, min_factor=0.1), 8)
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd", schedule=["constant", schedule])
    lrtune.tune(lambda trial: (math.log10(trial.lr) + 1.5) ** 2, steps=64, budget=2.0,
                strategy="grid", space=space, storage=url, study_name="s")
    stored = {t.params["schedule"] for t in optuna.load_study(study_name="s", storage=url).trials}
    assert stored == {"constant", json.dumps(schedule.describe(), sort_keys=True)}  # no repr
    study = lrtune.load_study("s", url)
    assert {repr(t.params["schedule"]) for t in study.trials} == {"'constant'", repr(schedule)}
    drawn = {s["number"]: s for s in report_data(study).schedules}
    for t in study.trials:  # every trial's schedule drawn, the object one with its warm-up
        lrs = drawn[t.number]["value"]
        if t.params["schedule"] == schedule:
            assert lrs[0] < t.lr / 4 and max(lrs) == pytest.approx(t.lr) and lrs[-1] < t.lr * 0.2
        else:
            assert lrs == [t.lr] * len(lrs)


def test_a_schedule_of_a_class_this_process_lacks_is_left_out_of_the_figure():
    space = lrtune.Space(lr=0.1)
    unknown = json.dumps({"type": "MyCyclic", "total_steps": 16})  # a user's unimported class
    params = from_storable(space, {"lr": 0.1, "schedule": unknown})
    assert params == {"lr": 0.1, "schedule": unknown}  # kept as stored, never guessed
    assert trial_schedule(space, params, 16) is None
    assert trial_schedule(space, {"lr": 0.1, "schedule": MultiStep(16, (8,), 0.1)}, 16) \
        == MultiStep(16, (8,), 0.1)
