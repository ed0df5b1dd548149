"""Report data, checked number by number against the study it was read from."""

import json
import math

import optuna

import pytest

import lrtune
from lrtune.report import report_data
from lrtune.report._data import config_text, estimate_sentences, wall_label
from lrtune.report._figures import plot_curves, plot_schedules
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
        lr = dict(zip(s["step"], s["value"], strict=True))
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
    assert params["schedule"] == unknown and params["lr"] == 0.1  # kept as stored, never guessed
    assert trial_schedule(space, params, 16) is None
    assert trial_schedule(space, {"lr": 0.1, "schedule": MultiStep(16, (8,), 0.1)}, 16) \
        == MultiStep(16, (8,), 0.1)


def test_the_summary_shows_the_searched_space_and_a_copyable_configuration(data, digits_study):
    best = digits_study[0].best
    assert data.study["space"] == {"lr": "0.0001 to 3 (log)", "optimizer": "sgd",
                                   "schedule": "MultiStep", "warmup": "0",
                                   "weight_decay": "0.0005"}  # momentum is left unset: omitted
    assert data.config == {
        "lr": float(f"{best.lr:.4g}"), "optimizer": "sgd",
        "schedule": repr(MultiStep(total_steps=600, milestones=(300, 450), gamma=0.1)),
        "warmup": 0.0, "weight_decay": 0.0005, "steps": 600}
    assert json.loads(config_text(data.config)) == data.config  # one line of plain JSON
    assert "\n" not in config_text(data.config)


def test_each_row_has_its_trials_wall_time(data, trials):
    assert all(r["wall_time"] == trials[r["number"]].wall_time > 0 for r in data.rows)
    assert [wall_label(s) for s in (0.8413, 12.34, 245.2, None)] == \
        ["0.841 s", "12.3 s", "4 min 05 s", "-"]


def _line_ends(fig):
    return {round(float(line.get_xdata()[-1]), 9) for line in fig.axes[0].lines
            if len(line.get_xdata()) > 1}


def test_the_curves_and_schedules_lie_over_the_fraction_of_each_run_by_default(data):
    finite = [c for c in data.curves if c["state"] == "completed"]
    lengths = {c["steps"] for c in finite}
    assert len(lengths) >= 3  # scan, refine and full runs: what the step axis squeezes
    by_fraction, by_step = plot_curves(data.curves), plot_curves(data.curves, x="step")
    assert by_fraction.axes[0].get_xlabel() == "fraction of the trial's run"
    assert all(0 <= x <= 1 for line in by_fraction.axes[0].lines for x in line.get_xdata())
    for c in finite:  # each completed run ends near 1 of its own length, not at steps / T
        last_step = c["points"][-1][0]
        assert round(last_step / c["steps"], 9) in _line_ends(by_fraction)
        assert last_step in _line_ends(by_step) and last_step / c["steps"] > 0.9
    schedules = plot_schedules(data.schedules)
    assert schedules.axes[0].get_xlabel() == "fraction of the trial's run"
    for s in data.schedules:  # applied, or planned past a stop: each ends at its own run's end
        assert round(s["step"][-1] / s["steps"], 9) in _line_ends(schedules)
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'x' parameter of plot_curves\(\) must be one of 'fraction', "
                             r"'step'\. Got 'epoch' instead\."):
        plot_curves(data.curves, x="epoch")


def test_the_estimate_and_its_interval_are_in_the_report(data, digits_study):
    study = digits_study[0]
    estimate = data.basin["estimate"]
    assert estimate == study.estimate.to_dict()
    assert estimate["low"] <= estimate["lr"] <= estimate["high"]
    sentence = estimate_sentences(data.basin)
    assert sentence == (f"The trials place the full-length best LR at {estimate['lr']:.3g} "
                        f"(68% interval {estimate['low']:.3g}-{estimate['high']:.3g}).")


def test_the_report_notes_when_the_move_with_length_was_assumed():
    estimate = {"lr": 0.01, "low": 0.005, "high": 0.02, "noise": 0.01, "edge": None,
                "wider_range": None, "shift_assumed": False}
    assert estimate_sentences({"estimate": estimate}) == (
        "The trials place the full-length best LR at 0.01 (68% interval 0.005-0.02).")
    noted = estimate_sentences({"estimate": {**estimate, "shift_assumed": True}})
    assert noted.endswith("Note: at a constant LR the best LR moves with the run's length, by an "
                          "amount of each recipe's own; the basin fit had one shorter length to "
                          "read, so that move was assumed, not measured: runs of a second "
                          "length, or full-length ones, measure it (a larger budget buys "
                          "them).")


def _basin_objective(trial):
    """A basin in log-LR around 0.01 whose runs blow up above 0.3."""
    for step in range(trial.steps):
        trial.report(float("inf") if trial.lr > 0.3 and step > 2 else 1.0 / (step + 1), step)
    return (math.log10(trial.lr) + 2) ** 2


def test_a_weight_decay_range_splits_the_basin_by_the_choices_only():
    """Every trial of a weight-decay range has its own value: a basin line (and a legend entry)
    per trial hid the basin."""
    study = lrtune.tune(_basin_objective, steps=8, budget=16.0, strategy="random",
                        space=lrtune.Space(lr=(1e-4, 1.0), optimizer=["sgd", "adamw"],
                                           weight_decay=(1e-5, 1e-2)))
    data = report_data(study)
    completed = [t for t in study.trials if t.state.value == "completed"]
    assert len({t.params["weight_decay"] for t in completed}) == len(completed) > 4
    assert {r["setting"] for r in data.basin["rungs"]} == {
        f"optimizer {t.params['optimizer']}" for t in completed}  # one line per optimizer
    assert all(set(r["settings"]) == {"optimizer", "weight_decay"} for r in data.rows)


def test_a_plain_optuna_study_shows_the_lrs_it_tried_not_a_default_space(tmp_path):
    url = f"sqlite:///{tmp_path}/plain.db"
    plain = optuna.create_study(study_name="plain", storage=url)
    plain.optimize(lambda t: (math.log10(t.suggest_float("lr", 1e-4, 1.0, log=True)) + 2) ** 2,
                   n_trials=4)
    data = report_data(lrtune.load_study("plain", url, read_only=True))
    lrs = [t.params["lr"] for t in plain.trials]
    assert data.study["space"] == {"lr": f"{min(lrs):.3g} to {max(lrs):.3g} (tried)"}
    assert data.recommendation.endswith("the search spent 4.00 of ? runs.")  # no stored budget
    given = lrtune.load_study("plain", url, space=lrtune.Space(lr=(1e-4, 1.0), optimizer="sgd"))
    assert report_data(given).study["space"]["lr"] == "0.0001 to 1 (log)"  # the caller's word


@pytest.mark.parametrize("lrs", [["1e-3", "1e-2"], [0.0, 0.01], [True, False]])
def test_an_lr_that_is_not_a_positive_number_is_refused_clearly(tmp_path, lrs):
    url = f"sqlite:///{tmp_path}/odd.db"
    odd = optuna.create_study(study_name="odd", storage=url)
    for lr in lrs:
        odd.add_trial(optuna.trial.create_trial(
            params={"lr": lr}, value=1.0,
            distributions={"lr": optuna.distributions.CategoricalDistribution(lrs)}))
    with pytest.raises(lrtune.InvalidParameterError,
                       match=rf"trial \(number 0\) whose 'lr' is {lrs[0]!r}: a report needs a "
                             "positive number"):
        report_data(lrtune.load_study("odd", url, read_only=True))


def test_without_a_completed_trial_the_advice_follows_what_happened(tmp_path):
    url = f"sqlite:///{tmp_path}/open.db"
    lr = optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)
    study = optuna.create_study(study_name="open", storage=url)
    study.add_trial(optuna.trial.create_trial(params={"lr": 0.01}, distributions={"lr": lr},
                                              state=optuna.trial.TrialState.PRUNED))
    assert report_data(lrtune.load_study("open", url)).recommendation == (
        "No trial has completed (no trial diverged; the search spent 1.00 of ? runs).")
    study.enqueue_trial({"lr": 0.1})
    study.ask({"lr": lr})  # a trial still running: one may complete yet
    assert report_data(lrtune.load_study("open", url)).recommendation == (
        "No trial has completed yet (no trial diverged; the search spent 2.00 of ? runs): wait "
        "for the trials still running (1).")
    study.add_trial(optuna.trial.create_trial(params={"lr": 0.02}, distributions={"lr": lr},
                                              state=optuna.trial.TrialState.FAIL))
    study.add_trial(optuna.trial.create_trial(  # as lrtune writes a run that blew up
        params={"lr": 0.5}, distributions={"lr": lr}, state=optuna.trial.TrialState.PRUNED,
        user_attrs={"lrtune:state": "diverged", "lrtune:steps": 8, "lrtune:steps_done": 3}))
    assert report_data(lrtune.load_study("open", url)).recommendation.endswith(
        "runs): wait for the trials still running (1); lower the LR range; read the failed "
        "trials' errors in the table.")


def test_an_answer_whose_own_run_went_wrong_says_so_with_the_answer(digits):
    # an LR range far too low: every run barely moves, the best of them too, and "Train with
    # lr = ..." alone read as an answer to use
    from lrtune.tasks import objective

    study = lrtune.tune(objective(digits), steps=60, budget=1.0, strategy="grid",
                        space=lrtune.Space(lr=(1e-7, 1e-6), optimizer="sgd"), seed=0)
    best = study.best
    assert best.verdict == "stagnant"
    sentence = report_data(study).recommendation
    assert sentence.startswith(f"Train with lr = {best.lr:.3g}: trial {best.number} reached")
    assert sentence.endswith(f". Its run was stagnant: {best.diagnosis['hint']}")
